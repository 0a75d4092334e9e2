"""What both flood scripts share: start a `kontosynk-server` subcommand on the development
federation in `certs/`, wait for its port, and read its memory from /proc."""
import os, socket, subprocess, time


def start(bin_path, repo, work, subcommand, port, party, extra):
    """`bin_path SUBCOMMAND --listen 127.0.0.1:PORT` as PARTY (its certificate and key, the
    development federation's metadata and JWKS) plus `extra`; stderr to WORK/server.log.
    Returns once the port accepts connections."""
    c = lambda p: os.path.join(repo, "certs", p)
    server = subprocess.Popen(
        [bin_path, subcommand, "--listen", f"127.0.0.1:{port}",
         "--cert", c(f"certs/{party}.pem"), "--key", c(f"certs/{party}.key"),
         "--metadata", c("metadata.jws"), "--jwks", c("jwks.json"), *extra],
        stderr=open(os.path.join(work, "server.log"), "w"),
        env={**os.environ, "RUST_LOG": "warn"})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return server


def memory(server):
    """The server's (VmRSS, VmHWM) as /proc prints them."""
    fields = {}
    for line in open(f"/proc/{server.pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields["VmRSS"], fields["VmHWM"]
