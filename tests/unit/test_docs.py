"""Docs that could drift: the example config shows the defaults, and every file the architecture map names exists."""

from __future__ import annotations

import re

import yaml

from gateway.config import FileSettings

from ..support import REPO

FILE_NAME = re.compile(r"[\w./-]+\.(?:py|html|js|css|yaml\.in|yaml|conf|md|sh|service)\b")


def test_the_example_config_is_valid_and_every_value_in_it_is_the_default() -> None:
    example = yaml.safe_load((REPO / "config" / "gateway.example.yaml").read_text())
    assert FileSettings.model_validate(example) == FileSettings()
    assert set(example) == set(FileSettings.model_fields)
    for section, values in example.items():
        if isinstance(values, dict):
            model = FileSettings.model_fields[section].annotation
            assert set(values) == set(model.model_fields), section  # type: ignore[union-attr]


def test_every_file_the_docs_name_exists() -> None:
    skipped = {".git", ".demo", "__pycache__", "test-artifacts"}
    everything = {
        p.relative_to(REPO).as_posix()
        for p in REPO.rglob("*")
        if not any(part in skipped or part.startswith(".venv") for part in p.relative_to(REPO).parts)
    }
    basenames = {path.rsplit("/", 1)[-1] for path in everything}
    for doc in ("docs/architecture.md", "docs/security.md", "docs/deployment.md", "docs/replicas.md", "README.md"):
        text = (REPO / doc).read_text()
        assert "../shared" not in text, f"{doc} cites a file outside the repository"
        for name in {found.removeprefix("./") for found in FILE_NAME.findall(text)}:
            if name.startswith(("/", "http", ".demo/", "my_dag", "gateway.yaml")):
                continue  # URL paths, and files the reader makes
            if "/" in name:
                # A path from the repository's root, from docs/, or inside the gateway package (the map's tree).
                found = name in everything or f"gateway/{name}" in everything or (REPO / "docs" / name).exists()
                assert found, f"{doc} names {name}, which does not exist"
            else:
                assert name in basenames, f"{doc} names {name}, which does not exist"
