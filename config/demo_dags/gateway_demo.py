"""The demo DAG that ./run.sh installs: one quick task, one that prints a line a second (daily, so backfill works)."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="gateway_demo",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule="@daily",
    catchup=False,
    params={"who": "world"},
    tags=["airflow-rest-gateway"],
) as dag:
    hello = BashOperator(task_id="hello", bash_command="echo 'hello {{ params.who }} from {{ run_id }}'")
    count = BashOperator(task_id="count", bash_command='for i in 1 2 3 4 5; do echo "tick $i"; sleep 1; done')
    hello >> count
