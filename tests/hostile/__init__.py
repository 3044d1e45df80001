"""Hostile-input suite: a table of abusive requests against a real gateway process on real Airflow."""
