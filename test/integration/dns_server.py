"""A small authoritative DNS server for tests (UDP, loopback, stdlib only).

It answers A and AAAA queries for the names it is given, with the TTLs it is given, and can be
told at any time to change a name's answers, to answer SERVFAIL (or REFUSED, NXDOMAIN), or to
go silent (drop the queries: the client times out). Names it does not know get NXDOMAIN. It
counts the queries per name and type, so a test can tell how often a client resolves.

In a Python test:

    dns = DnsServer()                      # 127.0.0.1, a free port; dns.port
    dns.set("api.sluice.test", a=["127.0.0.1", "127.0.0.2"], ttl=30)
    dns.set("v6.sluice.test", aaaa=["::1"])
    dns.servfail("api.sluice.test")        # or dns.silent(...), dns.refused(...), dns.nxdomain(...)
    dns.queries("api.sluice.test", "A")    # how many A queries so far
    dns.stop()

As a process (for tests in other languages): `python3 dns_server.py` prints `PORT <n>` on its
stdout, then reads one JSON command per line on stdin and answers each with one line:

    {"op": "set", "name": "api.sluice.test", "a": ["127.0.0.1"], "aaaa": [], "ttl": 30}  -> OK
    {"op": "mode", "name": "api.sluice.test", "mode": "servfail"}                          -> OK
    {"op": "queries", "name": "api.sluice.test", "type": "A"}                             -> 3
    {"op": "remove", "name": "api.sluice.test"}                                            -> OK

It exits when stdin closes.
"""

import json
import socket
import struct
import sys
import threading

TYPE_A = 1
TYPE_AAAA = 28
TYPE_NAMES = {"A": TYPE_A, "AAAA": TYPE_AAAA}

RCODE_NOERROR = 0
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_REFUSED = 5

MODES = ("answer", "servfail", "refused", "nxdomain", "silent")


def _parse_question(packet):
    """(id, flags, qname lowercased, qtype, end offset of the question) or None."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1:
        return None
    labels = []
    i = 12
    while True:
        if i >= len(packet):
            return None
        n = packet[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(packet):
            return None  # no compression in questions from resolvers
        labels.append(packet[i:i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[i:i + 4])
    return qid, flags, ".".join(labels), qtype, i + 4


class DnsServer:
    def __init__(self, host="127.0.0.1", port=0):
        self._lock = threading.Lock()
        self._records = {}  # name -> {"a": [...], "aaaa": [...], "ttl": n, "mode": str}
        self._queries = {}  # (name, qtype) -> count
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()

    # --- configuration (any thread) ---------------------------------------------------------

    def set(self, name, a=(), aaaa=(), ttl=30):
        """Answers A/AAAA queries for `name` with these addresses (an empty list: NODATA)."""
        with self._lock:
            self._records[name.lower().rstrip(".")] = {
                "a": list(a), "aaaa": list(aaaa), "ttl": int(ttl), "mode": "answer"}

    def mode(self, name, mode):
        """answer | servfail | refused | nxdomain | silent, for a name already set."""
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        with self._lock:
            rec = self._records.setdefault(name.lower().rstrip("."),
                                           {"a": [], "aaaa": [], "ttl": 30, "mode": mode})
            rec["mode"] = mode

    def servfail(self, name):
        self.mode(name, "servfail")

    def refused(self, name):
        self.mode(name, "refused")

    def nxdomain(self, name):
        self.mode(name, "nxdomain")

    def silent(self, name):
        self.mode(name, "silent")

    def answer(self, name):
        """Back to answering with the name's addresses."""
        self.mode(name, "answer")

    def remove(self, name):
        with self._lock:
            self._records.pop(name.lower().rstrip("."), None)

    def queries(self, name, qtype="A"):
        """Queries received so far for `name` of `qtype` ("A", "AAAA")."""
        with self._lock:
            return self._queries.get((name.lower().rstrip("."), TYPE_NAMES[qtype]), 0)

    def stop(self):
        self._stopped = True
        self._thread.join(timeout=2)
        self._sock.close()

    # --- serving ----------------------------------------------------------------------------

    def _serve(self):
        while not self._stopped:
            try:
                packet, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(packet)
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError:
                    pass

    def _answer(self, packet):
        q = _parse_question(packet)
        if q is None:
            return None
        qid, qflags, name, qtype, qend = q
        with self._lock:
            self._queries[(name, qtype)] = self._queries.get((name, qtype), 0) + 1
            rec = self._records.get(name)
            rec = dict(rec) if rec is not None else None
        answers = []
        if rec is None:
            rcode = RCODE_NXDOMAIN
        elif rec["mode"] == "silent":
            return None
        elif rec["mode"] == "servfail":
            rcode = RCODE_SERVFAIL
        elif rec["mode"] == "refused":
            rcode = RCODE_REFUSED
        elif rec["mode"] == "nxdomain":
            rcode = RCODE_NXDOMAIN
        else:
            rcode = RCODE_NOERROR
            if qtype == TYPE_A:
                answers = [socket.inet_pton(socket.AF_INET, ip) for ip in rec["a"]]
            elif qtype == TYPE_AAAA:
                answers = [socket.inet_pton(socket.AF_INET6, ip) for ip in rec["aaaa"]]
        # QR, the query's opcode and RD, AA, RA.
        flags = 0x8000 | (qflags & 0x7800) | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode
        out = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0)
        out += packet[12:qend]
        for rdata in answers:
            # Name: a pointer to the question's name (offset 12).
            out += struct.pack("!HHHIH", 0xC00C, qtype, 1, rec["ttl"], len(rdata)) + rdata
        return out


def _main():
    server = DnsServer()
    sys.stdout.write("PORT %d\n" % server.port)
    sys.stdout.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "set":
                server.set(cmd["name"], a=cmd.get("a", ()), aaaa=cmd.get("aaaa", ()),
                           ttl=cmd.get("ttl", 30))
                result = "OK"
            elif op == "mode":
                server.mode(cmd["name"], cmd["mode"])
                result = "OK"
            elif op == "remove":
                server.remove(cmd["name"])
                result = "OK"
            elif op == "queries":
                result = str(server.queries(cmd["name"], cmd.get("type", "A")))
            else:
                result = "ERROR unknown op"
        except (ValueError, KeyError, OSError) as e:
            result = "ERROR %s" % e
        sys.stdout.write(result + "\n")
        sys.stdout.flush()
    server.stop()


if __name__ == "__main__":
    _main()
