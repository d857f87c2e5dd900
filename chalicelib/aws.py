"""AWS clients, built on first use from one botocore session shared by the process.

Nothing here runs at import: moto must be active before the first client exists, and a Lambda
that never touches SQS should not pay for an SQS client. One session matters for cold starts:
each new botocore session loads its data files again (about 50 ms), and PynamoDB would
otherwise make one per model. The endpoint comes from `AWS_ENDPOINT_URL` (set by the local
stack to the embedded moto server, unset on AWS), or for one service from
`AWS_ENDPOINT_URL_<SERVICE>`, as botocore names them.

The session's data loader knows which services the app uses (SERVICES). botocore's own
loader, to check a service name, first lists every service it has data for (~400 directories
and ~2,700 stat calls, ~20 ms of each cold start), and it parses its JSON data files into
OrderedDicts (the 1.3 MB endpoints file alone takes ~15 ms that way, ~4 ms as plain dicts,
which keep order too). Both are cold-start costs, and neither changes what a client does:
tests/unit/test_aws_clients.py compares models and endpoints with botocore's own loader.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from chalicelib.config import settings

# Every AWS service the app's code calls; a client for another one is refused by name.
SERVICES = ("dynamodb", "s3", "sqs", "ses", "ssm")

_lock = threading.RLock()
_clients: dict[str, Any] = {}
_session: Any = None


class _SharedSession:
    """The process's botocore session, handed to PynamoDB too. Client creation is not
    thread-safe in botocore, so it is serialised (the local server is threaded). A client
    asked for again with the same settings is the one already made: every PynamoDB model has
    a connection of its own, all configured alike, and each new client costs ~30 ms of a
    cold start (bench/cold_start.py)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._made: dict[tuple, Any] = {}

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        settings_key = tuple(sorted((k, repr(v)) for k, v in getattr(
            config, "_user_provided_options", {}).items()))
        key = (args, tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "config")),
               settings_key)
        with _lock:
            made = self._made.get(key)
            if made is None:
                made = self._made[key] = self._session.create_client(*args, **kwargs)
            return made

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _app_loader(search_path: str | None) -> Any:
    """botocore's data loader for SERVICES only, reading its data files as plain dicts (see the
    module docstring). `search_path`: AWS_DATA_PATH, honoured as botocore does."""
    import msgspec
    from botocore.loaders import JSONFileLoader, Loader, instance_cache

    class PlainJSONFileLoader(JSONFileLoader):
        def _load_file(self, full_path: str, open_method: Any) -> Any:
            if not os.path.isfile(full_path):
                return None
            with open_method(full_path, "rb") as fp:
                return msgspec.json.decode(fp.read())

    class AppLoader(Loader):
        @instance_cache
        def list_available_services(self, type_name: str) -> list[str]:
            found = set()
            for base in self.search_paths:
                for name in SERVICES:
                    directory = os.path.join(base, name)
                    if os.path.isdir(directory) and any(
                            self.file_loader.exists(os.path.join(directory, version, type_name))
                            for version in os.listdir(directory)):
                        found.add(name)
            return sorted(found)

    extra = [os.path.expanduser(os.path.expandvars(path))
             for path in search_path.split(os.pathsep)] if search_path else None
    return AppLoader(extra_search_paths=extra, file_loader=PlainJSONFileLoader())


def botocore_session() -> Any:
    """The shared botocore session (PynamoDB's connections get it through chalicelib.db)."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                import botocore.session

                session = botocore.session.get_session()
                session.register_component(
                    "data_loader", _app_loader(session.get_config_variable("data_path")))
                _session = _SharedSession(session)
    return _session


def client(service: str) -> Any:
    """A cached client for `service` (one of SERVICES) in the configured region and endpoint."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            if service not in SERVICES:
                raise ValueError(f"{service!r} is not in chalicelib.aws.SERVICES")
            cfg = settings()
            endpoint = cfg.endpoint_url(service)
            found = botocore_session().create_client(
                service, region_name=cfg.region, endpoint_url=endpoint,
                config=client_config(service, endpoint))
            _clients[service] = found
    return found


def client_config(service: str, endpoint_url: str | None) -> Any:
    """How the app's client for `service` talks to AWS, or to the local endpoint.

    S3 signs with Signature Version 4: without `signature_version` botocore presigns with
    SigV2, which S3 refuses for every bucket made since June 2020. On AWS it addresses the
    regional virtual-hosted endpoint (`<bucket>.s3.<region>.amazonaws.com`): a new bucket
    answers there at once, where the global endpoint redirects for a while, and a browser's
    presigned POST would not follow the redirect. Path style only against a local endpoint,
    whose host name has no bucket subdomains."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3,
                    read_timeout=10)
    if service == "s3":
        config = config.merge(Config(signature_version="s3v4", s3={
            "addressing_style": "path" if endpoint_url else "virtual",
            "us_east_1_regional_endpoint": "regional"}))
    return config


_queue_urls: dict[str, str] = {}


def queue_url(name: str) -> str:
    """The URL of the SQS queue `name`, asked once per process (one GetQueueUrl)."""
    found = _queue_urls.get(name)
    if found is None:
        found = _queue_urls[name] = sqs().get_queue_url(QueueName=name)["QueueUrl"]
    return found


def forget_queue_urls() -> None:
    """Forget the queue URLs asked so far (a benchmark showing what a fresh process pays)."""
    _queue_urls.clear()


def dynamodb() -> Any:
    return client("dynamodb")


def sqs() -> Any:
    return client("sqs")


def s3() -> Any:
    return client("s3")


def ses() -> Any:
    return client("ses")


def ssm() -> Any:
    return client("ssm")
