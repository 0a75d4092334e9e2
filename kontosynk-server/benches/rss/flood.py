"""Reproduce the subscription flood against a real `kontosynk-server ss12000`:
2,000 POST /subscriptions from one member with a loopback target, then one change
(an import by another process), then 40 s of webhook delivery. Prints RSS (VmRSS/VmHWM
from /proc), outbound connections seen by the target and stored records."""
import http.client, json, os, socket, ssl, subprocess, sys, threading, time, uuid

sys.dont_write_bytecode = True  # no __pycache__ in the repository
from server import memory, start  # noqa: E402

BIN, REPO, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
EXTRA = sys.argv[4:]
os.makedirs(WORK, exist_ok=True)
db = os.path.join(WORK, "s.sqlite")
for f in (db, db + "-wal", db + "-shm"):
    if os.path.exists(f):
        os.remove(f)

# The webhook target: accepts and closes at once (each TLS attempt fails), counting.
accepted = [0]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
tport = listener.getsockname()[1]
def accept():
    while True:
        c, _ = listener.accept()
        accepted[0] += 1
        c.close()
threading.Thread(target=accept, daemon=True).start()

c = lambda p: os.path.join(REPO, "certs", p)
port = 18443
server = start(BIN, REPO, WORK, "ss12000", port, "school-server",
               ["--db", f"sqlite:{db}", "--poll-interval", "1", *EXTRA])
status = lambda: memory(server)
# The API answers under the path of the school server's base_uri in certs/metadata.jws.
API = "/ss12000/v2.0"

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(c("certs/school-client.pem"), c("certs/school-client.key"))
ctx.set_alpn_protocols(["http/1.1"])
conn = None
codes = {}
target = f"https://127.0.0.1:{tport}/hook"
print("before flood", status())
t0 = time.time()
for i in range(2000):
    for _ in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            conn.request("POST", f"{API}/subscriptions", json.dumps(
                {"name": f"s{i}", "target": target, "resourceTypes": [{"resource": "Person"}]}),
                {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
            break
        except (OSError, http.client.HTTPException):
            conn = None
print(f"flood: {sum(codes.values())} requests in {time.time() - t0:.1f} s, statuses {codes}")
print("after flood", status())

person = {"id": str(uuid.uuid4()), "meta": {"created": "2026-01-01T00:00:00Z", "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
          "givenName": "Ny", "familyName": "Testsson"}
pf = os.path.join(WORK, "change.json")
json.dump({"persons": [person]}, open(pf, "w"))
subprocess.run([BIN, "import", "--db", f"sqlite:{db}", pf], check=True, capture_output=True)
t1 = time.time()
peak = 0
while time.time() - t1 < 40:
    rss, hwm = status()
    peak = max(peak, int(rss.split()[0]))
    time.sleep(1)
rss, hwm = status()
q = lambda sql: subprocess.run(["sqlite3", db, sql], capture_output=True, text=True).stdout.strip()
print(f"40 s after one change: VmRSS {rss}, VmHWM {hwm}, peak sampled VmRSS {peak} kB")
print(f"outbound connections to the target: {accepted[0]}")
subs = q("select count(*) from subscriptions")
recs = q("select count(*) from records where kind='webhook'")
print(f"stored subscriptions: {subs}, webhook records: {recs}")
server.terminate()
server.wait()
