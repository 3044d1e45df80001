"""airflow-rest-gateway: Airflow's CLI and the classic REST API plugin contract over HTTP."""

__version__ = "0.1.0"
