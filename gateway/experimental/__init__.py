"""The experimental REST API, answered by a persistent Airflow worker process (no process per request)."""
