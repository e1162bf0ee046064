# A real SMTP server for tests (aiosmtpd): plain, STARTTLS or implicit TLS,
# optionally with AUTH. Prints READY once it listens, then one JSON line per
# message received.
#   python3 smtp_server.py PORT MODE CERT KEY USER PASSWORD
import json, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, mode, cert, key, user, password = sys.argv[1:7]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf8", "replace"),
            "tls": session.ssl is not None
                   or server.transport.get_extra_info("ssl_object") is not None,
            "auth": bool(session.authenticated),
        }), flush=True)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, data):
    ok = (isinstance(data, LoginPassword)
          and data.login.decode() == user and data.password.decode() == password)
    return AuthResult(success=ok)


ctx = None
if mode in ("starttls", "tls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
kwargs = dict(hostname="127.0.0.1", port=int(port))
if user:
    kwargs.update(authenticator=authenticate, auth_require_tls=False)
if mode == "starttls":
    kwargs.update(tls_context=ctx, require_starttls=True)
if mode == "tls":
    kwargs.update(ssl_context=ctx)
Controller(Handler(), **kwargs).start()
print("READY", flush=True)
while True:
    time.sleep(3600)
