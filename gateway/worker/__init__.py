"""The persistent Airflow worker: one process with Airflow imported that answers reads and the experimental
API from the ORM (no process per request). ``client.py`` is the gateway's side, ``main.py`` the process,
``operations.py`` what it runs."""
