from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="airflow-rest-gateway",
    version="0.1.0",
    description="Apache Airflow's CLI and classic REST API plugin contract behind one fast, safe aiohttp service",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # The page templates live at the top of the repo (design card); installed, they sit inside the package.
    packages=[*find_packages(include=["gateway", "gateway.*"]), "gateway.templates"],
    package_dir={"gateway.templates": "templates"},
    package_data={"gateway.templates": ["*.html", "*.js", "*.css"]},
    install_requires=[
        # The Airflow 3 releases the gateway is tested on (CI: the newest fully, the oldest with a reduced suite).
        # Installing into an existing Airflow environment keeps its Airflow.
        "apache-airflow>=3.1,<3.4",
        "aiohttp>=3.11,<4",
        "aiohttp-jinja2>=1.6",
        "aiohttp-remotes>=1.3",
        "jinja2>=3.1",
        "pydantic>=2.5",
        "pyyaml>=6",
        "graphviz>=0.20",
        "psutil>=5.9",
        "prometheus-client>=0.20",
        # The masker's automaton: linear in the text whatever the number of secrets.
        "ahocorasick-rs>=1.0",
        # Swagger UI's assets for the /docs/ page (served by the gateway: no CDN).
        "swagger-ui-py>=25",
    ],
    extras_require={
        # What Airflow needs for a PostgreSQL metadata DB: psycopg2 for its sync engine, asyncpg for its async one;
        # psycopg (3) for the gateway's own PostgreSQL job store (jobs.store: postgresql://...).
        "postgres": ["apache-airflow[postgres]>=3.1,<3.4", "psycopg>=3.1"],
        "test": [
            "pytest>=8",
            "pytest-aiohttp>=1.1",
            "pytest-xdist>=3.6",
            "ruff>=0.6",
            "playwright>=1.45",
            "openapi-spec-validator>=0.7",
            "schemathesis>=4.1",
        ],
    },
    entry_points={"console_scripts": ["airflow-rest-gateway=gateway.__main__:main"]},
)
