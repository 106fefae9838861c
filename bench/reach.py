#!/usr/bin/env python3
"""make reach: how much of real, foreign code the planner accepts.

Starts an nginx master (master_process on, loopback, temporary prefix) that maps nginx,
libssl.so.3, libcrypto.so.3 and libc.so.6, lists its function symbols with
`livepatch --symbols`, and runs the planner alone (`livepatch --dry-run --json`, which never
attaches) for every one of them with another function of the same object as the target,
several at a time. Accepted = status "planned"; anything else is a refusal, grouped by its
message with names, addresses and numbers taken out. Sizes come from the objects' own symbol
tables (readelf); the 95% goal is over symbols of 5 bytes or more.

Usage: bench/reach.py [--livepatch ./livepatch] [--out bench/reach.md] [--jobs N] [--pid PID]
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

OBJECTS = ["libc.so.6", "libcrypto.so.3", "libssl.so.3", "nginx"]
# A target per object (the second one when F is the first); any valid function would do.
TARGETS = {
    "libc.so.6": ["free", "malloc"],
    "libcrypto.so.3": ["EVP_MD_CTX_free", "EVP_MD_CTX_new"],
    "libssl.so.3": ["SSL_free", "SSL_new"],
    "nginx": ["ngx_palloc", "ngx_pnalloc"],
}
GOAL = 95.0


def start_nginx(tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""master_process on;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_session_cache shared:SSL:1m;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
""")
    proc = subprocess.Popen(
        ["/usr/sbin/nginx", "-e", "stderr", "-p", tmp, "-c", conf, "-g",
         f"daemon off; pid {tmp}/nginx.pid; error_log stderr;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "w"),
        start_new_session=True)
    for _ in range(500):
        if os.path.exists(os.path.join(tmp, "nginx.pid")):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    sys.exit("reach: nginx did not start: " + open(os.path.join(tmp, "log")).read())


def object_paths(pid):
    """Base name -> path of every file mapped into pid."""
    paths = {}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].startswith("/"):
                paths.setdefault(os.path.basename(parts[5]), parts[5])
    return paths


def symbol_sizes(path):
    """Name (without @version) -> size of its function symbol (the default version's, else the largest)."""
    sizes, default = {}, {}
    for table in ("--dyn-syms", "--syms"):
        out = subprocess.run(["readelf", table, "-W", path], capture_output=True, text=True,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) < 8 or not f[0].endswith(":") or f[3] not in ("FUNC", "IFUNC") or f[6] == "UND":
                continue
            full = f[7]
            name = full.split("@")[0]
            size = int(f[2], 0) if f[2].startswith("0x") else int(f[2])
            is_default = "@@" in full or "@" not in full
            if is_default and f[3] == "FUNC":
                default[name] = size
            sizes[name] = max(sizes.get(name, 0), size)
    sizes.update(default)
    return sizes


HEX = re.compile(r"0x[0-9a-fA-F]+\b")
QUOTED = re.compile(r"'[^']*'")
NUM = re.compile(r"(?<![A-Za-z_])\d+(\.\d+)?(?!x)")


def normalize(msg, fname, obj):
    m = HEX.sub("ADDR", msg)
    m = QUOTED.sub("'NAME'", m)
    for o in OBJECTS:
        m = m.replace(o, "OBJECT")
    if fname:
        m = re.sub(r"(?<![A-Za-z0-9_])" + re.escape(fname) + r"(?![A-Za-z0-9_])", "NAME", m)
    m = NUM.sub("N", m)
    return m


def plan_one(lp, pid, obj, name):
    for g in TARGETS[obj]:
        if g == name:
            continue
        r = subprocess.run([lp, "--pid", str(pid), "--func", f"{obj}:{name}", "--target", f"{obj}:{g}",
                            "--dry-run", "--json"], capture_output=True, text=True)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            return obj, name, r.returncode, None, f"no JSON (exit {r.returncode}): {r.stderr.strip()[:200]}"
        if j.get("status") == "planned":
            return obj, name, 0, j, None
        err = (j.get("error") or {}).get("message") or f"status {j.get('status')}"
        if "are the same" not in err:	# F is an alias of this G: try the other target
            break
    return obj, name, r.returncode, j, err


class Image:
    """An object's file, to read the bytes of a function by its link-time address."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.loads = []
        out = subprocess.run(["readelf", "-l", "-W", path], capture_output=True, text=True,
                             env={**os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            f = line.split()
            if f and f[0] == "LOAD":
                self.loads.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
        self.syms = {}
        for table in ("--dyn-syms", "--syms"):
            out = subprocess.run(["readelf", table, "-W", path], capture_output=True, text=True,
                                 env={**os.environ, "LC_ALL": "C"}).stdout
            for line in out.splitlines():
                f = line.split()
                if len(f) >= 8 and f[0].endswith(":") and f[3] == "FUNC" and f[6] != "UND":
                    self.syms.setdefault(f[7].split("@")[0], int(f[1], 16))

    def read(self, name, n):
        va = self.syms.get(name)
        for vaddr, off, size in self.loads:
            if va is not None and vaddr <= va < vaddr + size:
                self.f.seek(off + va - vaddr)
                return self.f.read(n)
        return None


CALL = re.compile(r"a call at .*\+0x([0-9a-f]+) \(call (0x[0-9a-f]+|[^)]*)\)")


def call_returns_past_jump(img, name, err):
    """For a 'call inside the bytes to replace' refusal: True when the call is a direct call
    (5 bytes) whose return address is past the 5-byte jump written at the site (after a leading
    endbr64), i.e. the call is the last displaced instruction and returns into intact code;
    False when it returns inside the jump; None when it cannot be told from the message."""
    m = CALL.search(err)
    if not m or not m.group(2).startswith("0x"):
        return None
    head = img.read(name, 4)
    if head is None:
        return None
    site = 4 if head == b"\xf3\x0f\x1e\xfa" else 0
    return int(m.group(1), 16) + 5 >= site + 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--livepatch", default="./livepatch")
    ap.add_argument("--out", default="bench/reach.md")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--budget-s", type=float, default=100,
                    help="stop planning after this long and report what was planned (default 100)")
    a = ap.parse_args()
    lp = os.path.abspath(a.livepatch)
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="lp-reach.")
    proc = None
    try:
        if a.pid:
            pid = a.pid
        else:
            if not os.access("/usr/sbin/nginx", os.X_OK):
                sys.exit("reach: /usr/sbin/nginx is not installed (apt-get install nginx-light)")
            proc = start_nginx(tmp)
            pid = proc.pid
        paths = object_paths(pid)
        missing = [o for o in OBJECTS if o not in paths]
        if missing:
            sys.exit(f"reach: process {pid} does not map {', '.join(missing)}")
        listed = subprocess.run([lp, "--pid", str(pid), "--symbols"], capture_output=True,
                                text=True, check=True).stdout.split()
        work, seen = [], set()
        for spec in listed:
            obj, _, name = spec.partition(":")
            if obj in OBJECTS and (obj, name) not in seen:
                seen.add((obj, name))
                work.append((obj, name))
        sizes = {o: symbol_sizes(paths[o]) for o in OBJECTS}
        images = {o: Image(paths[o]) for o in OBJECTS}
        print(f"reach: {len(work)} function symbols of {', '.join(OBJECTS)} in process {pid}; "
              f"{a.jobs} dry runs at a time", file=sys.stderr)
        t1 = time.monotonic()
        results = []
        deadline = t1 + a.budget_s

        def bounded(o, n):
            return plan_one(lp, pid, o, n) if time.monotonic() < deadline else None

        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            futs = [ex.submit(bounded, o, n) for o, n in work]
            for i, fu in enumerate(concurrent.futures.as_completed(futs), 1):
                if fu.result() is not None:
                    results.append(fu.result())
                if i % 2000 == 0:
                    print(f"reach: {i}/{len(work)} in {time.monotonic() - t1:.0f} s", file=sys.stderr)
        plan_s = time.monotonic() - t1
        if len(results) < len(work):
            print(f"reach: time budget ({a.budget_s:.0f} s) reached: {len(results)} of {len(work)} "
                  f"symbols planned", file=sys.stderr)
    finally:
        if proc:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    write_report(a, pid, results, sizes, images, plan_s, time.monotonic() - t0, len(work))
    for img in images.values():
        img.f.close()


def write_report(a, pid, results, sizes, images, plan_s, total_s, n):
    per = {o: collections.Counter() for o in OBJECTS}
    reasons = collections.Counter()
    reasons_obj = {o: collections.Counter() for o in OBJECTS}
    examples = {}
    codes = {}
    forms = collections.Counter()
    calls = collections.Counter()	# call-inside refusals: returns past the jump / inside / unknown
    calls_obj = {o: collections.Counter() for o in OBJECTS}
    for obj, name, rc, j, err in results:
        size = sizes[obj].get(name)
        if size is None and j and "function" in j:
            size = j["function"].get("size")
        big = size is not None and size >= 5
        per[obj]["all"] += 1
        per[obj]["big"] += big
        if err is None:
            per[obj]["ok"] += 1
            per[obj]["ok_big"] += big
            for s in j.get("sites", []):
                forms[s.get("form")] += 1
            continue
        key = normalize(err, name, obj)
        if not big:
            per[obj]["small_refused"] += 1
            key_small = key
            reasons[("<5", key_small)] += 1
            continue
        reasons[(">=5", key)] += 1
        if "a call at" in err:
            c = call_returns_past_jump(images[obj], name, err)
            k = "past" if c else "inside" if c is False else "unknown"
            calls[k] += 1
            calls_obj[obj][k] += 1
        reasons_obj[obj][key] += 1
        codes[key] = rc
        examples.setdefault(key, []).append(f"{obj}:{name}")
    tot = collections.Counter()
    for o in OBJECTS:
        tot.update(per[o])
    lines = ["# Planner reach on real Debian binaries (`make reach`)", ""]
    lines.append(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; "
                 f"{subprocess.run([os.path.abspath(a.livepatch), '--version'], capture_output=True, text=True).stdout.strip()}; "
                 f"nginx master pid {pid}; {n} function symbols (the names `livepatch --symbols` lists for these objects) "
                 f"planned with `livepatch --dry-run --json -f OBJECT:F -t OBJECT:G` (G another function of the same object: "
                 + ", ".join(f"{o}: {TARGETS[o][0]}" for o in OBJECTS) + f"), {a.jobs} at a time.")
    lines.append("")
    done = len(results)
    if done < n:
        lines.append(f"**Partial: the time budget ({a.budget_s:.0f} s) ran out after {done} of {n} symbols; the "
                     f"counts below cover those.**")
        lines.append("")
    lines.append(f"Planning took {plan_s:.1f} s ({done / plan_s:.0f} symbols/s, {plan_s * a.jobs / done * 1e3:.1f} ms per "
                 f"dry run per job, one livepatch process per symbol); the whole target {total_s:.1f} s.")
    lines.append("")
    lines.append(f"| object | function symbols | of them >= 5 bytes | accepted (>= 5 bytes) | refused (>= 5 bytes) "
                 f"| acceptance, >= 5 bytes (goal {GOAL:.0f}%) | symbols < 5 bytes (accepted / refused) |")
    lines.append("|---|--:|--:|--:|--:|--:|--:|")
    for o in OBJECTS + ["all"]:
        c = tot if o == "all" else per[o]
        pct = 100.0 * c["ok_big"] / c["big"] if c["big"] else 0.0
        small = c["all"] - c["big"]
        lines.append(f"| {o} | {c['all']} | {c['big']} | {c['ok_big']} | {c['big'] - c['ok_big']} | "
                     f"{pct:.1f}% {'(met)' if pct >= GOAL else '(missed)'} | {small} ({c['ok'] - c['ok_big']} / "
                     f"{c['small_refused']}) |")
    lines.append("")
    lines.append("Jump forms of the accepted plans: " + ", ".join(f"{k}: {v}" for k, v in forms.most_common()) + ".")
    lines.append("")
    lines.append("## Refusals of symbols >= 5 bytes, by reason")
    lines.append("")
    lines.append("Messages normalized: NAME for the symbol or a quoted name, ADDR for an address, N for a number, "
                 "OBJECT for an object name.")
    lines.append("")
    lines.append("| count | exit | " + " | ".join(OBJECTS) + " | reason | examples |")
    lines.append("|--:|--:|" + "--:|" * len(OBJECTS) + "---|---|")
    big_reasons = [(k, v) for (kind, k), v in reasons.items() if kind == ">=5"]
    for k, v in sorted(big_reasons, key=lambda kv: -kv[1]):
        ex = ", ".join(sorted(examples[k])[:3])  # results come back in any order: keep it stable
        lines.append(f"| {v} | {codes[k]} | " + " | ".join(str(reasons_obj[o][k]) for o in OBJECTS)
                     + f" | {k.replace('|', '/')} | {ex} |")
    if sum(calls.values()):
        past = calls["past"]
        lines.append("")
        lines.append(f"Of the {sum(calls.values())} refusals for a call inside the bytes to replace, {past} are a "
                     f"direct call that is the last displaced instruction: its return address (the call's end) is "
                     f"past the 5 bytes the jump writes, so a thread returning there runs intact old code, not the "
                     f"middle of the jump ({calls['inside']} really return inside the jump, {calls['unknown']} "
                     f"could not be told from the message). Per object: "
                     + ", ".join(f"{o} {calls_obj[o]['past']}" for o in OBJECTS)
                     + f". The planner refuses any call in the displaced range (src/plan.c, the CS_GRP_CALL test "
                     f"in the decode loop); refusing only a call that ends before the jump's last byte would "
                     f"accept them: acceptance of symbols >= 5 bytes would be "
                     f"{100.0 * (tot['ok_big'] + past) / tot['big']:.1f}% instead of "
                     f"{100.0 * tot['ok_big'] / tot['big']:.1f}%.")
    small_reasons = [(k, v) for (kind, k), v in reasons.items() if kind == "<5"]
    if small_reasons:
        lines.append("")
        lines.append("Refusals of symbols under 5 bytes (outside the goal): " + "; ".join(
            f"{v} x {k}" for k, v in sorted(small_reasons, key=lambda kv: -kv[1])[:5]) + ".")
    text = "\n".join(lines) + "\n"
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
