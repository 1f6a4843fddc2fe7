"""The platform's foundation: configuration, migrations, production safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

REPO = Path(__file__).resolve().parent.parent


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120
    )


_SETUP = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup()"


def test_system_check_passes():
    """``manage.py check`` reports no issues."""
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


@pytest.mark.django_db
def test_migrations_are_committed():
    """Every model change has a committed migration."""
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_production_refuses_default_secret_key():
    """DEBUG=0 without a real secret key refuses to start, saying why."""
    proc = _run_python(_SETUP, DEBUG="0", ALLOWED_HOSTS="study.example.org")
    assert proc.returncode != 0
    assert "DJANGO_SECRET_KEY" in proc.stderr


def test_production_refuses_empty_allowed_hosts():
    """DEBUG=0 with an empty ALLOWED_HOSTS refuses to start, saying why."""
    proc = _run_python(_SETUP, DEBUG="0", DJANGO_SECRET_KEY="k" * 50)
    assert proc.returncode != 0
    assert "ALLOWED_HOSTS" in proc.stderr


def test_production_settings_pass_deploy_check():
    """A properly configured production instance passes ``check --deploy``."""
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={
            # The browser tests' async-safety override must not leak into a production check.
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DEBUG": "0", "DJANGO_SECRET_KEY": "s3cr3t-" + "x" * 50, "ALLOWED_HOSTS": "study.example.org",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_boolean_setting_is_a_clear_error():
    proc = _run_python(_SETUP, DEBUG="maybe")
    assert proc.returncode != 0
    assert "DEBUG must be one of" in proc.stderr


@pytest.mark.parametrize(("pool", "expected"), [(None, [60, True, False]), ("1", [0, True, True])])
def test_postgresql_connection_per_thread_unless_pooled(pool, expected):
    """By default each thread keeps one PostgreSQL connection, checked when a request first uses it;
    DATABASE_POOL=1 shares a psycopg pool (which keeps the connections) among a process's threads."""
    code = "\n".join([
        "import json, os",
        *(f"os.environ.pop({name!r}, None)" for name in ("DATABASE_POOL", "DATABASE_CONN_MAX_AGE",
                                                          "DATABASE_HEALTH_CHECKS")),
        *([f"os.environ['DATABASE_POOL'] = {pool!r}"] if pool else []),
        _SETUP,
        "from django.conf import settings",
        "db = settings.DATABASES['default']",
        "print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS'], 'pool' in db.get('OPTIONS', {})]))",
    ])
    proc = _run_python(code, DATABASE_URL="postgres://stylestudy@127.0.0.1:5432/stylestudy")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def _assert_imports_without_django(package: str, *extra: str) -> None:
    """Every module of ``package`` (and the ``extra`` modules) imports with Django absent."""
    code = "\n".join([
        "import sys; sys.modules['django'] = None",
        f"import pkgutil, importlib, {package}",
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):",
        "    importlib.import_module(m.name)",
        *(f"import {name}" for name in extra),
        "print('ok')",
    ])
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_stylecore_imports_without_django():
    """stylecore is usable with no Django installed or configured."""
    _assert_imports_without_django("stylecore", "stylecore.cli")


def test_analysis_and_report_build_import_without_django():
    """The statistics and the report builder run on a tidy frame alone (benchmarks, ``--tidy``)."""
    _assert_imports_without_django(
        "studies.analysis", "studies.reports.build", "studies.reports.document", "studies.reports.wording",
        "studies.reports.plots", "studies.reports.pdf",
    )


def test_healthz_reports_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True
