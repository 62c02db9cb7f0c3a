"""A fake Salesforce on loopback, over HTTPS, shaped as Salesforce's REST API documents it.

- `POST /services/Soap/u/NN.N`: the SOAP API's `login` (user name, and the password
  with the security token after it): a `loginResponse` whose `serverUrl` is on
  INSTANCE, or a SOAP fault `INVALID_LOGIN`. The client only sends it to
  `*.salesforce.com`: `reach_salesforce_com(port)` routes those names here, and the
  certificate must name SALESFORCE_NAMES.
- `POST /services/oauth2/token`: the OAuth 2.0 JWT bearer flow (`grant_type`
  `urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion` an RS256 JWT whose
  signature, `iss`, `sub` and `aud` it checks): `{"access_token", "instance_url", ...}`,
  or 400 `{"error": "invalid_grant", "error_description": ...}`.
- `GET /services/data/vNN.N/query?q=SOQL`: the simple SOQL the bot writes
  (`SELECT fields FROM object [WHERE a = 'x' AND b >= 2026-...] [ORDER BY f] [LIMIT n]`):
  `{"totalSize", "done": true, "records": [{"attributes": {...}, ...}]}`.
- `POST .../sobjects/{Task,Lead}/`: 201 `{"id", "success": true, "errors": []}`;
  `PATCH .../sobjects/Task/{id}`: 204; `GET .../sobjects/{name}/describe/`.
- Errors as Salesforce sends them, a JSON array of `{"message", "errorCode"}`: 401
  INVALID_SESSION_ID once sessions are expired, 403 REQUEST_LIMIT_EXCEEDED, 503; and a
  create whose reply never comes (stored, then the connection is dropped).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import jwt
import urllib3.util.connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.tls import Certificate

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
INSTANCE = "acme.my.salesforce.com"  # where a SOAP login sends the client on
SALESFORCE_NAMES = ("login.salesforce.com", "*.my.salesforce.com")
PARTNER = "{urn:partner.soap.sforce.com}"
SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>
<faultcode>sf:INVALID_LOGIN</faultcode>
<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>
<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage>
</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""
SOAP_LOGIN = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">
<soapenv:Body><loginResponse><result><passwordExpired>false</passwordExpired>
<serverUrl>https://{instance}/services/Soap/u/59.0/00Dfake</serverUrl><sessionId>{session}</sessionId>
<userId>{user}</userId></result></loginResponse></soapenv:Body></soapenv:Envelope>"""
PREFIX = {"Contact": "003", "Lead": "00Q", "User": "005", "Task": "00T", "Account": "001"}
STAMP = "%Y-%m-%dT%H:%M:%S.000+0000"
CONDITION = re.compile(r"(\w+)\s*(=|>=|<=|>|<)\s*('(?:[^'\\]|\\.)*'|[^\s']+)")
SOQL = re.compile(
    r"SELECT (?P<fields>.+?) FROM (?P<object>\w+)(?: WHERE (?P<where>.+?))?(?: ORDER BY (?P<order>\w+))?(?: LIMIT (?P<limit>\d+))?$",
    re.S,
)


def reach_salesforce_com(monkeypatch: Any, port: int) -> None:
    """Connections to `*.salesforce.com:443` reach the fake on `port` instead (as a hosts file
    would send them), so the client's own SOAP login URL is used unchanged."""
    create = urllib3.util.connection.create_connection

    def rerouted(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, at = address
        if host.endswith(".salesforce.com") and at == 443:
            address = ("127.0.0.1", port)
        return create(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", rerouted)


def connected_app_key(folder: Path) -> tuple[Path, Any]:
    """An RSA key for the connected app: (the private key file the bot reads, the public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "salesforce.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path, key.public_key()


@dataclass
class FakeSalesforce:
    certificate: Certificate
    public_key: Any  # the connected app's certificate's key: checks the JWT's signature
    client_id: str = "3MVG9fake.consumer.key"
    username: str = "integration@acme.example"
    password: str = "correct-horse-battery"  # a SOAP login's, with security_token after it
    security_token: str = "fakeSecurityToken0123"
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {name: {} for name in PREFIX})
    # Failure injection: every data call answers this (None: work), or only the next n.
    outage: int | str | None = None  # 503, or "REQUEST_LIMIT_EXCEEDED"
    fail_next: list[int | str] = field(default_factory=list)
    drop_next_create: int = 0  # creates stored whose answer never comes
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path + query)
    logins: int = 0
    describe_flags: dict[str, dict[str, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.tokens: set[str] = set()
        self.user_id = self.add("User", Email="integration@acme.example", IsActive=True, Username=self.username)

    # --- the test's side --------------------------------------------------------------
    def start(self) -> FakeSalesforce:
        fake = self

        class Handler(_Handler):
            salesforce = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = self.certificate.server_context().wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def add(self, sobject: str, **fields: Any) -> str:
        """Store a record as if made in Salesforce; its Id."""
        with self._lock:
            record_id = f"{PREFIX[sobject]}{next(self._ids):015d}"
            stamp = self.now().strftime(STAMP)
            self.records[sobject][record_id] = {
                "Id": record_id,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                **fields,
            }
            if sobject == "Task":
                self.records[sobject][record_id].setdefault("IsClosed", fields.get("Status") == "Completed")
            if sobject == "Lead":
                self.records[sobject][record_id].setdefault("IsConverted", False)
        return record_id

    def edit(self, sobject: str, record_id: str, **fields: Any) -> None:
        """Change a record as a user in Salesforce would."""
        with self._lock:
            self._update(sobject, record_id, fields)

    def tasks(self) -> list[dict[str, Any]]:
        return list(self.records["Task"].values())

    def expire_sessions(self) -> None:
        self.tokens.clear()

    # --- the API ------------------------------------------------------------------------
    def _update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        record = self.records[sobject][record_id]
        record.update(fields)
        record["LastModifiedDate"] = self.now().strftime(STAMP)
        if sobject == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        if form.get("grant_type") != JWT_GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"], audience=self.url)
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"invalid assertion: {exc}"}
        if claims.get("iss") != self.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if claims.get("sub") != self.username:
            return 400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
        token = "00D" + secrets.token_hex(16)
        self.tokens.add(token)
        self.logins += 1
        return 200, {
            "access_token": token,
            "instance_url": self.url,
            "id": f"{self.url}/id/00Dfake/{self.user_id}",
            "token_type": "Bearer",
            "scope": "api",
        }

    def soap_login(self, body: bytes) -> tuple[int, str]:
        envelope = ElementTree.fromstring(body)
        username = envelope.findtext(f".//{PARTNER}username")
        password = envelope.findtext(f".//{PARTNER}password")
        if username != self.username or password != self.password + self.security_token:
            return 500, SOAP_FAULT
        session = "00D" + secrets.token_hex(16)
        with self._lock:
            self.tokens.add(session)
            self.logins += 1
        return 200, SOAP_LOGIN.format(instance=INSTANCE, session=session, user=self.user_id)

    def data(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, token: str | None
    ) -> tuple[int, Any]:
        if token not in self.tokens:
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        failure = self.fail_next.pop(0) if self.fail_next else self.outage
        if failure == 503:
            return 503, [{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
        if failure == "REQUEST_LIMIT_EXCEEDED":
            return 403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        parts = path.strip("/").split("/")  # services data vNN.N ...
        rest = parts[3:]
        if rest == ["query"] and method == "GET":
            return 200, self._query(query["q"][0])
        if len(rest) == 3 and rest[0] == "sobjects" and rest[2] == "describe":
            flags = {"queryable": True, "createable": True, "updateable": True, **self.describe_flags.get(rest[1], {})}
            return 200, {"name": rest[1], **flags, "fields": [{"name": "Id"}, {"name": "Subject"}]}
        if len(rest) == 2 and rest[0] == "sobjects" and method == "POST":
            record_id = self.add(rest[1], **body)
            return 201, {"id": record_id, "success": True, "errors": []}
        if len(rest) == 3 and rest[0] == "sobjects" and method == "PATCH":
            if rest[2] not in self.records[rest[1]]:
                return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
            with self._lock:
                self._update(rest[1], rest[2], body)
            return 204, None
        return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]

    def _query(self, soql: str) -> dict[str, Any]:
        match = SOQL.match(soql.strip())
        assert match, f"SOQL the fake does not read: {soql}"
        sobject = match["object"]
        names = [name.strip() for name in match["fields"].split(",")]
        rows = list(self.records[sobject].values())
        if match["where"]:
            conditions = CONDITION.findall(match["where"])
            leftover = CONDITION.sub("", match["where"]).replace("AND", "").strip()
            assert not leftover, f"conditions the fake does not read: {match['where']}"
            rows = [row for row in rows if all(_holds(row, *condition) for condition in conditions)]
        if match["order"]:
            rows.sort(key=lambda row: row.get(match["order"]) or "")
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        records = [
            {
                "attributes": {"type": sobject, "url": f"/services/data/v59.0/sobjects/{sobject}/{row['Id']}"},
                **{n: row.get(n) for n in names},
            }
            for row in rows
        ]
        return {"totalSize": len(records), "done": True, "records": records}


def _holds(row: dict[str, Any], name: str, op: str, literal: str) -> bool:
    value = row.get(name)
    if literal.startswith("'"):
        wanted: Any = re.sub(r"\\(.)", r"\1", literal[1:-1])
    elif literal in ("true", "false"):
        wanted = literal == "true"
    elif literal == "null":
        wanted = None
    else:
        wanted = dt.datetime.fromisoformat(literal.replace("Z", "+00:00"))
        value = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z") if value else None
    if name == "Email" and isinstance(value, str) and isinstance(wanted, str):
        value, wanted = value.lower(), wanted.lower()  # Salesforce compares text without case
    if op == "=":
        return bool(value == wanted)
    if value is None:
        return False
    return bool({">=": value >= wanted, ">": value > wanted, "<=": value <= wanted, "<": value < wanted}[op])


class _Handler(BaseHTTPRequestHandler):
    salesforce: FakeSalesforce
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        fake = self.salesforce
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with fake._lock:
            fake.calls.append((method, self.path))
        if url.path.startswith("/services/Soap/u/") and method == "POST":
            status, xml = fake.soap_login(raw)
            self._answer(status, xml.encode(), "text/xml;charset=UTF-8")
            return
        if url.path == "/services/oauth2/token" and method == "POST":
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
            status, answer = fake.token(form)
        elif url.path.startswith("/services/data/"):
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            body = json.loads(raw) if raw else None
            status, answer = fake.data(method, url.path, parse_qs(url.query), body, token)
            if status == 201 and fake.drop_next_create:
                fake.drop_next_create -= 1
                self.close_connection = True
                self.connection.close()  # stored, but the answer never comes
                return
        else:
            status, answer = 404, [{"message": "not found", "errorCode": "NOT_FOUND"}]
        payload = b"" if answer is None else json.dumps(answer).encode()
        self._answer(status, payload, "application/json;charset=UTF-8")

    def _answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")
