"""One settings object for emberwatch: environment variables `EMBERWATCH_*`, optionally a TOML file.

Secrets (SMTP password, later OAuth client secret and the token key) come only from the environment or a
secret store, never from the repository. `repr()` of the settings hides them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMBERWATCH_", extra="ignore")

    home: Path = Field(default=Path("emberwatch-data"), description="Folder holding the DuckDB file and the outbox.")
    timezone: str = Field(default="Europe/London", description="Zone of the schedules (people keep their own).")
    # 03:00 exists on both DST change days in Europe (02:00-03:00 is skipped or repeated, 03:00 is not).
    nightly_cron: str = "0 3 * * *"
    weekly_cron: str = "0 6 * * 1"
    deliver_cron: str = "*/15 * * * *"  # each person's mail waits for their own window (default 07:30-08:30)

    # Nightly sync: re-fetch the last few nights too, because watches sync late (a night can appear days later).
    refetch_nights: int = Field(default=3, ge=0, le=30)
    max_workers: int = Field(default=4, ge=1, le=64, description="Bound on concurrent per-person tasks.")
    # DuckDB allows one writing process per file: a run that finds another run holding it waits this long.
    writer_wait_s: float = Field(default=1800.0, ge=0)

    # Retention (docs/privacy.md): raw payloads by fetch date, everything dated by the night it describes.
    # 0 keeps forever. Applied at the end of every nightly run.
    retention_raw_days: int = Field(default=90, ge=0)
    retention_features_days: int = Field(default=730, ge=0)

    # Email. With no SMTP host, email goes to the outbox folder (.eml + .html) under `home`.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout_s: float = 30.0
    email_from: str = "emberwatch <no-reply@emberwatch.local>"
    support_resource: str = "your employee assistance programme, your GP, or someone you trust"

    # The clinician's web door (`emberwatch web`): every email link starts here. HTTPS in production, behind a
    # reverse proxy (README); the loopback default serves a local demo.
    public_url: str = "http://127.0.0.1:8000"
    # Keys that sign email links, newest first (`NEW,OLD` while rotating). Unset: a Prefect Secret block
    # `emberwatch-link-key`, else a key created once in `home` (owner-only), which is enough for one machine.
    link_key: SecretStr | None = None

    # Scale-out (docs/scaling.md): people are spread over `shard_count` DuckDB files by a stable hash of their
    # id, one writer per file; a run with `shard` set works on that file only.
    shard_count: int = Field(default=1, ge=1, le=1024)
    shard: int | None = Field(default=None, ge=0)

    @property
    def db_path(self) -> Path:
        if self.shard is None:
            return self.home / "emberwatch.duckdb"
        return self.home / "shards" / f"{self.shard:03d}" / "emberwatch.duckdb"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("EMBERWATCH_CONFIG")
        if toml_path:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path))
            secrets = sorted(SECRET_FIELDS & toml.toml_data.keys())
            if secrets:
                raise SettingsError(
                    f"{toml_path} sets {', '.join(secrets)}: secrets come only from the environment or a secret "
                    f"store, never from a file that may be copied or committed. Set "
                    f"{', '.join('EMBERWATCH_' + name.upper() for name in secrets)} instead.")
            sources.append(toml)
        return tuple(sources)


# Settings read only from the environment (or a secret store), never from the TOML file
SECRET_FIELDS = frozenset({"smtp_password", "link_key"})


class SettingsError(ValueError):
    """Settings that cannot be used, as one sentence naming each setting (the CLI prints it, not a traceback)."""


def load_settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"EMBERWATCH_{'_'.join(str(p) for p in e['loc']).upper()} ({e['msg'].lower()})"
                             for e in exc.errors())
        where = " or ".join(filter(None, ("the environment", os.environ.get("EMBERWATCH_CONFIG"))))
        raise SettingsError(f"Some settings cannot be used: {problems}. They come from {where}.") from None


LINK_KEY_BLOCK = "emberwatch-link-key"
LINK_KEY_FILE = "link-signing.key"


def link_keys(settings: Settings) -> list[str]:
    """The email-link signing keys, newest first: the setting, a Prefect Secret block, or a key file in `home`
    made on first use. Losing the file only means links already sent stop working; nothing is locked away."""
    raw = settings.link_key.get_secret_value() if settings.link_key else None
    # Blocks live on a Prefect server; without one configured, asking would start a throwaway server for nothing.
    if not raw and os.environ.get("PREFECT_API_URL"):
        try:
            from prefect.blocks.system import Secret

            raw = Secret.load(LINK_KEY_BLOCK, _sync=True).get()  # type: ignore[call-arg]
        except Exception:
            raw = None
    if not raw:
        path = settings.home / LINK_KEY_FILE
        if not path.exists():
            import secrets

            settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_EXCL: two processes starting together agree on one key (the loser reads the winner's).
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(32))
            except FileExistsError:
                pass
        raw = path.read_text().strip()
    keys = [k.strip() for k in str(raw).split(",") if k.strip()]
    if not keys or any(len(k) < 16 for k in keys):
        raise ValueError("EMBERWATCH_LINK_KEY must hold one or more keys of at least 16 characters, newest first, "
                         "separated by commas.")
    return keys
