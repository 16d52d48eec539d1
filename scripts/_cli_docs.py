"""Write docs/cli.md with the real output of each ``http-fastpath`` command.

Runs inside a private network namespace (``netlab.enter_private_netns``) against the lab's
servers: a TFO + MPTCP listener, a plain listener (no ``TCP_FASTOPEN``, plain TCP) and an
HTTPS listener whose certificate comes from a throw-away trustme CA.
"""

from __future__ import annotations

import shlex
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import trustme

from http_fastpath.netlab import (
    Server,
    enter_private_netns,
    full_backlog,
    next_loopback,
    set_sysctl,
    silent_listener,
)

ROOT = Path(__file__).resolve().parent.parent

INTRO = """\
# The `http-fastpath` command line

`http-fastpath` (also `python -m http_fastpath`) answers three questions without kernel docs:

| command | question |
|---|---|
| `doctor` | What does *this host* offer? TFO client/server bits, the TFO blackhole timer, MPTCP, its path-manager limits and endpoints, `TCP_IS_MPTCP`, kernel QUIC, the HTTP client libraries, the `HTTP_FASTPATH` opt-in. Every "no" comes with the command that enables it, and a severity: `NO` only for what a client needs. |
| `probe URL` | Does *this server* do TFO (cookie obtained, SYN data acknowledged), MPTCP (`MP_CAPABLE` answered: `TCP_IS_MPTCP`), HTTP/2 (ALPN `h2`) and HTTP/3 (`Alt-Svc`)? One line per feature, with the evidence. |
| `get URL` | One request through the fastpath (httpx or httpx2 `FastpathTransport`, or requests `FastpathAdapter`), with the proof and a curl-like timing breakdown. |
| `demo` | Show it working: stock vs fastpath connections to the lab's servers, as the server kernel saw them. |

Output is plain text (colour only on a terminal; `NO_COLOR` switches it off) or JSON with
`--json`. Progress appears on stderr only when stderr is a terminal. `COMMAND --help`
describes each command. Bad input gives one line on stderr, never a traceback; with
`--json` a failure also prints a JSON object on stdout with an `error` member
(`kind`, `message`, `exit_status`), next to whatever the command had gathered (`get`
keeps the responses that completed, also when interrupted with Ctrl-C).

## Exit status

| status | meaning |
|---|---|
| 0 | done (`doctor`: also when something is missing, unless `--require` names it) |
| 1 | any other failure: connection refused, host not resolved, TLS rejected, no HTTP client library, `doctor --require` not met, `demo` saw no SYN data |
| 2 | usage error: unknown flag, bad value, bad URL, `--http3` with an `http://` URL |
| 22 | `get -f`: the HTTP status was 400 or more (the body is not printed, like curl) |
| 28 | timeout: the connect or the read timeout ran out; the message says which (like curl) |
| 130 | interrupted (Ctrl-C) |

1, 2, 22 and 28 mean what they mean for curl; unlike curl, a refused connection or an
unresolvable host is 1 (not 7 or 6), as in earlier releases.

## Flags

- `doctor [--json] [--require LIST]` — `LIST` is a comma list of `tfo`, `tfo-server`,
  `mptcp`, `tcp-is-mptcp`, `quic`, `requests`, `httpx`, `httpx2`, `http2`, `env`; exit
  status 1 when one of them is missing. Each check has a mark: `ok`; `NO`, missing and
  needed by a client (TFO client bit, MPTCP); `opt`, not needed for a client (the TFO
  server bit, kernel QUIC, a library you did not install, the `HTTP_FASTPATH` opt-in);
  `WARN`; `--`, information. The last line says whether the host is healthy for a client.
  In `--json` each check carries `status` (`ok`/`no`/`warn`/`info`: is it there?, as in
  earlier releases) and `severity` (`ok`/`missing`/`optional`/`warn`/`info`: does a client
  need it?), and the report a `healthy` boolean.
- `probe URL [--json] [--cacert FILE] [-k/--insecure] [--timeout S]` — opens three fresh
  connections: two with TFO (the first asks for a cookie, the second uses it; the client
  kernel's `TCP_INFO` says whether the server acknowledged the SYN data; `ip tcp_metrics`
  shows the cached cookie) and one MPTCP socket (`TCP_IS_MPTCP`), which also sends a
  `GET` over HTTP/1.1 to read `Alt-Svc`. Only the base package is needed.
- `get URL [--client httpx|requests|httpx2 | --httpx | --requests | --httpx2 | --http3]
  [--no-tfo] [--no-mptcp] [--tfo-policy safe|always] [-X METHOD] [-H 'Name: value']...
  [-d DATA | -d @FILE | -d @-] [-i] [-o FILE] [-L] [-f] [-v] [--repeat N] [--json]
  [--cacert FILE] [-k] [--timeout S]` — the body goes to stdout (or `-o FILE`),
  `-i` adds the response head, `-f` turns an HTTP status >= 400 into exit status 22
  without printing the body, `-v` writes the timings and the `ConnectionInfo` to stderr.
  The default client is httpx when it is installed, else requests, else httpx2.
  `-X` takes any RFC 9110 method token (`M-SEARCH`, `PROPFIND`, ...). `--tfo-policy
  always` lets any request ride in the SYN, a POST too (only for servers that tolerate a
  duplicated request); the default `safe` sends only replay-safe ones early.
  `--http3` needs an `https://` URL. `--timeout S` is the connect timeout and the read
  timeout (between bytes); an error says which one ran out.
  Timings are seconds since the request started, like curl's `-w` (`time_namelookup`,
  `time_connect`, `time_appconnect`, `time_starttransfer`, `time_total`); with TFO the TCP
  handshake finishes *inside* the TLS handshake (the ClientHello rides in the SYN), so
  `connect` can come after the TLS start. `--repeat N` makes N requests, each on a fresh
  connection, and prints one line per connection: the second one shows the cookie paying
  off.

The enabling commands change the running kernel (run them as root; sysctls are per network
namespace). To keep a setting across reboots, put it in a file under `/etc/sysctl.d/`, e.g.
`echo net.ipv4.tcp_fastopen=3 | sudo tee /etc/sysctl.d/90-http-fastpath.conf`.

Everything below is real output, regenerated by `scripts/cli-docs` inside a private network
namespace (loopback servers from `http_fastpath.netlab`; addresses and ports change per run).

"""


DEMO_INTRO = """
## demo

`http-fastpath demo` (also `scripts/demo`) builds the network lab (client and server
network namespaces joined by an emulated 50 ms round trip), starts an HTTP and an HTTPS
server in the server namespace and times cold requests (a new connection each) from stock
requests / httpx and from `FastpathAdapter` / `FastpathTransport` /
`AsyncFastpathTransport`, interleaved. *SYN data* is what the **server's** kernel saw for
each connection; *TFO* is the client namespace's `TcpExt.TCPFastOpenActive` counter. It
exits 1 if a fastpath row saw no SYN data. Where no lab can be built (no root, no user
namespaces, no `/dev/net/tun`) it says why and falls back to a loopback proof (SYN data
and MPTCP observed, no timing claim). Sample run (under 20 s):

"""


def sh(argv: list[str], shown: list[str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "http_fastpath", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    cmd = "$ http-fastpath " + " ".join(shlex.quote(a) for a in (shown or argv))
    # stderr first: -v, --repeat lines and progress come before the body on a terminal too.
    out = done.stderr + ("\n" if done.stderr and not done.stderr.endswith("\n") else "")
    out += done.stdout
    status = "" if done.returncode == 0 else f"[exit status {done.returncode}]\n"
    return f"```console\n{cmd}\n{out.rstrip()}\n{status}```\n"


def _http3_section(ca: trustme.CA, ca_file: Path) -> str:
    """``get --http3`` against the test suite's aioquic HTTP/3 server (when aioquic is there)."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests._h3server import H3TestServer
    except ImportError as exc:
        return f"\n(`get --http3` not shown: {exc})\n"
    text = (
        "\n`--http3` uses the EXPERIMENTAL HTTP/3 transport (kernel QUIC when the `quic` "
        "module is loaded, else userspace QUIC; see docs/http3.md). There is no fallback to "
        "TCP:\n\n"
    )
    with H3TestServer(ca, "127.0.0.1", "localhost") as h3:
        url = h3.url("/")
        text += sh(
            ["get", url, "--http3", "-i", "-v", "--cacert", str(ca_file)],
            ["get", url, "--http3", "-i", "-v", "--cacert", "ca.pem"],
        )
    return text


def main() -> int:
    reason = enter_private_netns()
    if reason is not None:
        print(f"cannot enter a private network namespace: {reason}", file=sys.stderr)
        return 1
    ca = trustme.CA()
    tmp = Path(tempfile.mkdtemp())
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    trustme_other = tmp / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(trustme_other))
    tls_host = next_loopback()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(tls_host).configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["http/1.1"])
    parts: list[str] = [INTRO]
    with (
        Server(tfo=True, mptcp=True) as fast,
        Server(tfo=False, mptcp=False) as plain,
        Server(tls=server_ctx, host=tls_host, mptcp=True) as secure,
    ):
        ca_shown = "ca.pem"
        parts.append("## doctor\n\nThe host's story, in a namespace with TFO and MPTCP on:\n\n")
        parts.append(sh(["doctor"]))
        parts.append(
            "\nThe same namespace after `sysctl -w net.ipv4.tcp_fastopen=0` and "
            "`sysctl -w net.mptcp.enabled=0`; `--require` turns a missing feature into exit "
            "status 1:\n\n"
        )
        set_sysctl("net.ipv4.tcp_fastopen", "0")
        set_sysctl("net.mptcp.enabled", "0")
        parts.append(sh(["doctor", "--require", "tfo,mptcp"]))
        set_sysctl("net.ipv4.tcp_fastopen", "3")
        set_sysctl("net.mptcp.enabled", "1")
        parts.append("\n`--json` (abridged here to the first checks):\n\n")
        json_out = sh(["doctor", "--json", "--require", "tfo"]).splitlines()
        parts.append("\n".join([*json_out[:24], "  ...", "```"]) + "\n")

        parts.append("\n## probe\n\nA TFO + MPTCP listener:\n\n")
        parts.append(sh(["probe", fast.url + "/"]))
        parts.append("\nA plain listener (no `TCP_FASTOPEN`, plain TCP socket):\n\n")
        parts.append(sh(["probe", plain.url + "/"]))
        parts.append("\nHTTPS with a private CA:\n\n")
        parts.append(
            sh(
                ["probe", secure.url + "/", "--cacert", str(ca_file)],
                ["probe", secure.url + "/", "--cacert", ca_shown],
            )
        )
        parts.append("\n`--json`:\n\n")
        parts.append(sh(["probe", fast.url + "/", "--json"]))

        parts.append("\n## get\n\n")
        parts.append(
            "`--repeat 3` against a server this host has never talked to: the first connection "
            "asks for a cookie, the next ones put the request in the SYN:\n\n"
        )
        with Server(tfo=True, mptcp=True) as fresh:
            parts.append(sh(["get", fresh.url + "/bytes?n=16", "--repeat", "3", "-o", "/dev/null"]))
            parts.append(
                "\n`-i -v` (the timings and the proof go to stderr, the body to stdout):\n\n"
            )
            parts.append(sh(["get", fresh.url + "/", "-i", "-v"]))
            parts.append(
                "\nA POST is not replay-safe, so it never rides in the SYN (`tfo_policy='safe'`):\n\n"
            )
            parts.append(sh(["get", fresh.url + "/echo", "-d", "hello", "-v"]))
            parts.append(
                "\n`--tfo-policy always` lets the POST ride in the SYN too (only for servers "
                "that tolerate a duplicated request):\n\n"
            )
            parts.append(
                sh(
                    [
                        "get",
                        fresh.url + "/echo",
                        "-d",
                        "hello",
                        "--tfo-policy",
                        "always",
                        "--repeat",
                        "2",
                        "-o",
                        "/dev/null",
                    ]
                )  # fmt: skip
            )
        parts.append(
            "\nHTTPS: the TLS ClientHello rides in the SYN from the second connection on:\n\n"
        )
        fresh_host = next_loopback()
        fresh_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(fresh_host).configure_cert(fresh_ctx)
        with Server(tls=fresh_ctx, host=fresh_host, mptcp=True) as fresh_tls:
            url = fresh_tls.url + "/"
            parts.append(
                sh(
                    ["get", url, "--repeat", "2", "-v", "--cacert", str(ca_file)],
                    ["get", url, "--repeat", "2", "-v", "--cacert", ca_shown],
                )
            )
        parts.append("\nrequests instead of httpx, with TFO and MPTCP off:\n\n")
        parts.append(
            sh(
                [
                    "get",
                    secure.url + "/",
                    "--requests",
                    "--no-tfo",
                    "--no-mptcp",
                    "-v",
                    "--cacert",
                    str(ca_file),
                ],
                [
                    "get",
                    secure.url + "/",
                    "--requests",
                    "--no-tfo",
                    "--no-mptcp",
                    "-v",
                    "--cacert",
                    ca_shown,
                ],
            )
        )
        parts.append("\n`--json`:\n\n")
        parts.append(sh(["get", plain.url + "/", "--json"]))
        parts.append(_http3_section(ca, ca_file))
        parts.append(DEMO_INTRO)
        parts.append(sh(["demo"]))
        parts.append("\n## Errors\n\nOne line on stderr, non-zero exit status, no traceback:\n\n")
        parts.append(sh(["get", "not-a-url"]))
        parts.append(sh(["probe", "--frob", plain.url]))
        parts.append(sh(["probe", f"http://{plain.host}:1/"]))
        parts.append(sh(["probe", secure.url + "/"]))
        parts.append(
            sh(
                ["get", secure.url + "/", "--cacert", str(trustme_other)],
                ["get", secure.url + "/", "--cacert", "other-ca.pem"],
            )
        )
        parts.append(sh(["get", "https://127.0.0.1/", "--http3"]))
        parts.append(sh(["get", plain.url + "/", "--http3"]))
        parts.append(sh(["get", plain.url + "/status/404", "-f"]))
        parts.append(
            "\nA timeout is exit status 28, and says which wait ran out: no answer to the SYN "
            "(a listener whose accept queue is full) or no response (a listener that never "
            "answers):\n\n"
        )
        timeout_host = next_loopback()
        with full_backlog(timeout_host) as port:
            parts.append(sh(["get", f"http://{timeout_host}:{port}/", "--timeout", "1"]))
        with silent_listener(timeout_host) as port:
            parts.append(sh(["get", f"http://{timeout_host}:{port}/", "--timeout", "1"]))
        parts.append("\nWith `--json` the error is a JSON object on stdout too:\n\n")
        parts.append(sh(["get", f"http://{plain.host}:1/", "--json"]))
    (ROOT / "docs" / "cli.md").write_text("".join(parts))
    print(f"wrote {ROOT / 'docs' / 'cli.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
