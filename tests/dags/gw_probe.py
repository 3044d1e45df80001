"""DAGs the integration tests run against."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Asset

with DAG(
    dag_id="gw_probe",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    params={"who": "world"},
) as dag:
    hello = BashOperator(task_id="hello", bash_command="echo 'hello {{ params.who }} {{ ds }}'")
    fails = BashOperator(task_id="fails", bash_command="echo 'about to fail'; exit 3")
    slow = BashOperator(task_id="slow", bash_command='for i in 1 2 3; do echo "tick $i"; sleep 1; done')
    hello >> slow

with DAG(
    dag_id="gw_daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule="@daily",
    catchup=False,
) as daily:
    BashOperator(task_id="report", bash_command="echo 'report for {{ ds }}'")

with DAG(
    dag_id="gw_assets",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
) as assets:
    raw, clean = Asset("s3://lake/raw/orders"), Asset("s3://lake/clean/orders")
    produce = BashOperator(task_id="produce", bash_command="echo produce", outlets=[raw])
    refine = BashOperator(task_id="refine", bash_command="echo refine", inlets=[raw], outlets=[clean])
    produce >> refine
