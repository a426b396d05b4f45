"""configs/serve.yaml names only deployments the application has (Serve refuses the file otherwise)."""

from pathlib import Path

import yaml
from ray.serve import Deployment

import serve.deployments

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "serve.yaml"


def test_serve_yaml_names_the_applications_deployments():
    (application,) = yaml.safe_load(CONFIG.read_text())["applications"]
    assert application["import_path"] == "serve.app:app_builder"
    names = [deployment["name"] for deployment in application["deployments"]]
    defined = {name for name, value in vars(serve.deployments).items() if isinstance(value, Deployment)}
    assert names and set(names) <= defined, (names, defined)
