"""16 concurrent ~9.9 MB grant requests against a real `kontosynk-server gnap`; prints VmHWM
and what each request got back."""
import http.client, json, os, ssl, sys, threading, time

sys.dont_write_bytecode = True  # no __pycache__ in the repository
from server import memory, start  # noqa: E402

BIN, REPO, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
c = lambda p: os.path.join(REPO, "certs", p)
port = 17443
server = start(BIN, REPO, WORK, "gnap", port, "authserver",
               ["--signing-key", c("federation-signing-key.jwk"), "--issuer", "https://auth.test.example"])
status = lambda: memory(server)

location = "https://api.skolverket.se/provtjanst/provisioning/v1/" + "x" * 46  # 100 bytes
n = 9_900_000 // (len(location) + 3)
access = [{"type": "provisioning-api", "locations": [location] * n}]
if os.environ.get("AT_LIMITS"):
    access = [{"type": "provisioning-api", "locations": [location] * 9} for _ in range(32)]
body = json.dumps({"access_token": {"access": access, "flags": ["bearer"]},
                   "client": {"key": "https://school.test.example"}}).encode()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(c("certs/school-client.pem"), c("certs/school-client.key"))
ctx.set_alpn_protocols(["http/1.1"])
results = []
def one():
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
        conn.request("POST", "/transaction", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        results.append((r.status, len(data), data[:160]))
    except Exception as e:
        results.append(("error", 0, str(e)[:160].encode()))
print(f"request body {len(body)} bytes; before: VmRSS/VmHWM {status()}")
threads = [threading.Thread(target=one) for _ in range(16)]
t0 = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"16 concurrent requests in {time.time() - t0:.1f} s; after: VmRSS/VmHWM {status()}")
summary = {}
for s, size, head in results:
    summary.setdefault((s, size), head)
for (s, size), head in summary.items():
    print(f"  status {s}, response {size} bytes: {head[:150]!r}")
server.terminate()
server.wait()
