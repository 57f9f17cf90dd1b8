"""A Confluent Schema Registry test double, for what the real registry of the suite (Apicurio, scripts/schema-registry)
cannot be made to do here: demand HTTP basic credentials (Apicurio's authentication needs an OIDC server) and fail
on purpose (429 rate limits, 5xx). Everything else is tested against Apicurio.

- POST /subjects/{subject}/versions  {schema, schemaType, references} -> {"id": n}; the same schema again -> its id
- GET /schemas/ids/{id}[?subject=...]  -> {"schema": ..., "schemaType": ...} (no schemaType for AVRO)
- GET /subjects/{subject}/versions/latest, GET /subjects/{subject}/versions, GET /subjects
- GET /associations/... -> 404 (confluent-kafka >= 2.14 asks first, then falls back to the topic strategy)
- with `tls` (certificate, key): HTTPS
- with credentials set: 401 {"error_code": 401, "message": "Unauthorized"} unless HTTP basic auth matches
- with `failing` set (an HTTP status): every request is answered with it"""

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class Registry:
    def __init__(self, username=None, password=None, tls=None, failing=None):
        self.schemas = []  # (schema text, type); id = index + 1
        self.subjects = {}  # subject -> [id, ...] (versions)
        self.requests = []  # (method, path, body)
        self.credentials = (username, password) if username else None
        self.failing = failing
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                path = urlparse(self.path).path
                with registry.lock:
                    registry.requests.append((method, path, body))
                    if registry.failing:
                        return self.answer(registry.failing, {"error_code": registry.failing, "message": "failing on purpose"})
                    if registry.credentials:
                        expected = "Basic " + base64.b64encode(":".join(registry.credentials).encode()).decode()
                        if self.headers.get("Authorization") != expected:
                            return self.answer(401, {"error_code": 401, "message": "Unauthorized"})
                    status, answer = registry.route(method, [unquote(p) for p in path.strip("/").split("/")], body)
                return self.answer(status, answer)

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def schema_of(self, schema_id):
        return self.schemas[schema_id - 1]

    def route(self, method, parts, body):
        if method == "POST" and len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            return self.register(parts[1], body["schema"], body.get("schemaType") or "AVRO")
        if method == "GET" and parts[:2] == ["schemas", "ids"] and len(parts) == 3:
            schema_id = int(parts[2])
            if not 0 < schema_id <= len(self.schemas):
                return 404, {"error_code": 40403, "message": f"Schema {schema_id} not found"}
            text, kind = self.schema_of(schema_id)
            return 200, {"schema": text} if kind == "AVRO" else {"schema": text, "schemaType": kind}
        if method == "GET" and parts == ["subjects"]:
            return 200, sorted(self.subjects)
        if method == "GET" and len(parts) >= 3 and parts[0] == "subjects" and parts[2] == "versions":
            versions = self.subjects.get(parts[1])
            if not versions:
                return 404, {"error_code": 40401, "message": f"Subject '{parts[1]}' not found."}
            if len(parts) == 3:
                return 200, list(range(1, len(versions) + 1))
            version = len(versions) if parts[3] == "latest" else int(parts[3])
            schema_id = versions[version - 1]
            text, kind = self.schema_of(schema_id)
            return 200, {"subject": parts[1], "version": version, "id": schema_id, "schema": text, "schemaType": kind}
        if parts and parts[0] == "associations":
            return 404, {"error_code": 40410, "message": "No associations"}
        return 404, {"error_code": 404, "message": f"not in this double: {method} /{'/'.join(parts)}"}

    def register(self, subject, text, kind):
        versions = self.subjects.setdefault(subject, [])
        for schema_id in versions:
            if json.loads(self.schema_of(schema_id)[0]) == json.loads(text):
                return 200, {"id": schema_id}
        self.schemas.append((text, kind))
        versions.append(len(self.schemas))
        return 200, {"id": len(self.schemas)}
