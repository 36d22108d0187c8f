#!/usr/bin/python3
"""report.py (bench): turns the raw samples written by tests/bench/run into
the Markdown table (stdout) and the JSON file.

  report.py RESULTS OUT_JSON MODE LINES RUNS INPUT_BYTES KEYED_BYTES ELAPSED

RESULTS holds tab-separated lines:
  scen   ID TITLE RECORDS BYTES YARD_LABEL RATIO_KIND BUDGETS FLAGS
  sample ID ROLE T0 T1 USER SYS MAXRSS_KIB FS_INPUT_BLOCKS   (ROLE: mq or yard)
  error  ID MESSAGE
  skip   ID MESSAGE
  note   ID TEXT
  crc    HW_GBS|- SW_GBS

  metric ID NAME VALUE                          (read_bytes, log_bytes)
  stat   ID ROLE NAME VALUE    a figure of one run (p50_ms, p99_ms, conn_kib...):
                               the report takes the median over the runs

RATIO_KIND: thr (mq throughput / yardstick throughput = yard time / mq
time), time (mq time / yardstick time) or none.  BUDGETS: comma-separated
ratio_min:X[:AIM], ratio_max:X[:AIM], recs_min:X, gbs_min:X, rss_max:KIB, cpu_max:S,
readfrac_max:F (metric read_bytes at most F of metric log_bytes),
p99_max:MS (stat p99_ms), connkib_max:KIB (stat conn_kib).
FLAGS: showyard (also print a row for the yardstick itself); latency (the
samples' wall time is a run's median latency: the row shows the p50 and p99
stats instead of times and rates); conns (the row compares peak RSS, with
the stat conn_kib as its ratio).
"""
import json
import os
import platform
import statistics
import sys
import time


def load(path):
    scen, order, crc = {}, [], None
    for raw in open(path, encoding="utf-8", errors="replace"):
        f = raw.rstrip("\n").split("\t")
        kind = f[0]
        if kind == "scen":
            sid = f[1]
            scen[sid] = {
                "id": sid, "title": f[2], "records": int(f[3]), "bytes": int(f[4]),
                "yard_label": f[5], "ratio_kind": f[6], "budgets": f[7],
                "flags": f[8].split(",") if len(f) > 8 and f[8] else [],
                "samples": {"mq": [], "yard": []}, "errors": [], "skip": None, "notes": [],
                "metrics": {}, "stats": {"mq": {}, "yard": {}},
            }
            order.append(sid)
        elif kind == "sample":
            sid, role = f[1], f[2]
            t0, t1, u, s, m = float(f[3]), float(f[4]), float(f[5]), float(f[6]), int(float(f[7]))
            scen[sid]["samples"][role].append(
                {"wall_s": round(t1 - t0, 6), "user_s": u, "sys_s": s, "cpu_s": round(u + s, 3),
                 "peak_rss_kib": m, "disk_read_kib": int(f[8]) // 2 if len(f) > 8 else None})
        elif kind == "error":
            scen[f[1]]["errors"].append(f[2])
        elif kind == "skip":
            scen[f[1]]["skip"] = f[2]
        elif kind == "stat":
            scen[f[1]]["stats"][f[2]].setdefault(f[3], []).append(float(f[4]))
        elif kind == "metric":
            scen[f[1]]["metrics"][f[2]] = float(f[3])
        elif kind == "note":
            scen[f[1]]["notes"].append(f[2])
        elif kind == "crc":
            crc = (None if f[1] == "-" else float(f[1]), float(f[2]))
    return scen, order, crc


def summary(samples, records, nbytes):
    if not samples:
        return None
    wall = statistics.median(x["wall_s"] for x in samples)
    return {
        "runs": len(samples),
        "wall_s": round(wall, 4),
        "wall_min_s": round(min(x["wall_s"] for x in samples), 4),
        "records_per_s": round(records / wall) if wall > 0 and records else None,
        "mb_per_s": round(nbytes / wall / 1e6, 1) if wall > 0 and nbytes else None,
        "cpu_s": round(statistics.median(x["cpu_s"] for x in samples), 3),
        "peak_rss_kib": max(x["peak_rss_kib"] for x in samples),
        "samples": samples,
    }


def medians(stats):
    return {role: {k: round(statistics.median(v), 3) for k, v in d.items()}
            for role, d in stats.items() if d}


def check_budgets(spec, kind, mq, ratio, nbytes, metrics, stats):
    out = []
    for b in filter(None, spec.split(",")):
        p = b.split(":")
        name, val = p[0], float(p[1])
        aim = float(p[2]) if len(p) > 2 else None
        ok, text = None, b
        if name == "ratio_min":
            text = f"ratio ≥ {val:g}" + (f" (aim {aim:g})" if aim else "")
            ok = ratio is not None and ratio >= val
        elif name == "ratio_max":
            text = f"ratio ≤ {val:g}" + (f" (aim {aim:g})" if aim else "")
            ok = ratio is not None and ratio <= val
        elif name == "recs_min":
            text = f"≥ {val:,.0f} rec/s"
            ok = mq is not None and (mq["records_per_s"] or 0) >= val
        elif name == "gbs_min":
            text = f"≥ {val:g} GB/s"
            ok = mq is not None and nbytes / mq["wall_s"] / 1e9 >= val
        elif name == "readfrac_max":
            text = f"reads ≤ {val:.0%} of the log"
            rb, lb = metrics.get("read_bytes"), metrics.get("log_bytes")
            ok = rb is not None and rb >= 0 and lb and rb <= val * lb
        elif name == "p99_max":
            text = f"p99 < {val:g} ms"
            p99 = stats.get("mq", {}).get("p99_ms")
            ok = p99 is not None and p99 < val
        elif name == "connkib_max":
            text = f"≤ {val:g} KiB a connection"
            ck = stats.get("mq", {}).get("conn_kib")
            ok = ck is not None and ck <= val
        elif name == "cpu_max":
            text = f"CPU < {val * 1000:g} ms"
            ok = mq is not None and mq["cpu_s"] < val
        elif name == "rss_max":
            text = f"RSS < {val / 1024:g} MiB"
            ok = mq is not None and mq["peak_rss_kib"] < val
        aimed = None
        if aim is not None and ratio is not None:
            aimed = ratio >= aim if name == "ratio_min" else ratio <= aim
        out.append({"budget": text, "pass": bool(ok), "aim_met": aimed})
    return out


def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def fmt_mb(x):
    return "–" if x is None else f"{x:.0f}"


def lat_text(st):
    if "p50_ms" not in st:
        return "–"
    return f"p50 {st['p50_ms']:.2f} ms, p99 {st['p99_ms']:.2f} ms"


def fmt_rss(kib):
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main():
    res, out_json, mode, lines, runs, in_bytes, keyed_bytes, elapsed = sys.argv[1:9]
    scen, order, crc = load(res)
    rows, doc = [], []
    for sid in order:
        s = scen[sid]
        mq = summary(s["samples"]["mq"], s["records"], s["bytes"])
        yd = summary(s["samples"]["yard"], s["records"], s["bytes"])
        ratio = None
        if mq and yd and s["ratio_kind"] == "thr":
            ratio = round(yd["wall_s"] / mq["wall_s"], 3)
        elif mq and yd and s["ratio_kind"] == "time":
            ratio = round(mq["wall_s"] / yd["wall_s"], 3)
        status = "error" if s["errors"] else ("skipped" if s["skip"] else "ok")
        st = medians(s["stats"])
        budgets = check_budgets(s["budgets"], s["ratio_kind"], mq, ratio, s["bytes"],
                                s["metrics"], st) \
            if status == "ok" and mq else []
        doc.append({
            "id": sid, "scenario": s["title"], "status": status, "errors": s["errors"],
            "skip_reason": s["skip"], "notes": s["notes"], "metrics": s["metrics"],
            "records": s["records"], "stats": st,
            "bytes": s["bytes"], "mq": mq, "yardstick": dict(yd or {}, label=s["yard_label"]),
            "ratio": ratio,
            "ratio_kind": {"thr": "mq throughput / yardstick throughput",
                           "time": "mq time / yardstick time"}.get(s["ratio_kind"]),
            "budgets": budgets,
        })
        if "showyard" in s["flags"] and yd:
            rows.append([s["yard_label"], f"{yd['wall_s']:.3f}", fmt_int(yd["records_per_s"]),
                         fmt_mb(yd["mb_per_s"]), f"{yd['cpu_s']:.2f}", fmt_rss(yd["peak_rss_kib"]),
                         "–", "–", "–", ""])
        if status != "ok" or not mq:
            why = "; ".join(s["errors"]) if s["errors"] else (s["skip"] or "not measured")
            rows.append([s["title"], "–", "–", "–", "–", "–", s["yard_label"] or "–", "–", "–",
                         ("ERROR: " if s["errors"] else "") + why])
            continue
        ylab = "–"
        if s["yard_label"]:
            ylab = s["yard_label"] + (f" ({yd['wall_s']:.3f} s)" if yd else " (not measured)")
        rtxt = "–" if ratio is None else (f"{ratio:.2f}" + (" thr" if s["ratio_kind"] == "thr" else " time"))
        wall, rps, mbs, cpu = (f"{mq['wall_s']:.3f}", fmt_int(mq["records_per_s"]),
                               fmt_mb(mq["mb_per_s"]), f"{mq['cpu_s']:.2f}")
        if "latency" in s["flags"]:
            wall, rps, mbs = lat_text(st.get("mq", {})), "–", "–"
            if yd:
                ylab = f"{s['yard_label']} ({lat_text(st.get('yard', {}))})"
            rtxt = "–" if ratio is None else f"{ratio:.2f} time (p50)"
        elif "conns" in s["flags"]:
            wall, rps, mbs, cpu = "–", "–", "–", "–"
            if yd:
                ylab = f"{s['yard_label']} ({fmt_rss(yd['peak_rss_kib'])})"
            ck = st.get("mq", {}).get("conn_kib")
            rtxt = "–" if ck is None else f"+{ck:.1f} KiB a connection"
        rows.append([s["title"], wall, rps, mbs, cpu, fmt_rss(mq["peak_rss_kib"]),
                     ylab, rtxt, "; ".join(b["budget"] for b in budgets) or "–",
                     "; ".join("PASS" if b["pass"] else "FAIL" for b in budgets) or "–"])
    if crc:
        hw, sw = crc
        rows.append(["crc32c bench (256 MiB buffer, best of 5)", "–", "–",
                     f"{hw * 1000:.0f}" if hw else "hw n/a", "–", "–",
                     f"software CRC-32C ({sw:.2f} GB/s)",
                     f"{hw / sw:.2f} thr" if hw else "–", "–", "–"])
        doc.append({"id": "crc32c", "scenario": "tests/bench/crc32c.c",
                    "hw_gb_per_s": hw, "sw_gb_per_s": sw,
                    "ratio": round(hw / sw, 2) if hw else None})
    failures = [f"{d['id']}: {e}" for d in doc for e in d.get("errors", [])]
    head = ["scenario", "wall s", "records/s", "MB/s", "CPU s", "peak RSS", "yardstick",
            "ratio", "budget", "PASS/FAIL"]
    m = machine()
    print(f"mq benchmark ({mode}: {int(lines):,} lines of {int(in_bytes) / int(lines):.0f} bytes, "
          f"median of {runs} runs; {m['nproc']} × {m['cpu_model']}, Linux {m['kernel']}, {m['date']})")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["--:"] * 5 + ["---"] * 4) + "|")
    for r in rows:
        print("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    print()
    print("ratio: 'thr' = mq throughput ÷ yardstick throughput (higher is better); "
          "'time' = mq time ÷ yardstick time (lower is better). CPU s = user+sys of the "
          "measured process (median); peak RSS = max over runs.")
    for d in doc:
        for n in d.get("notes") or []:
            print(f"- {d['scenario']}: {n}")
    json.dump({
        "machine": m, "mode": mode, "lines": int(lines), "runs": int(runs),
        "input_bytes": int(in_bytes), "keyed_input_bytes": int(keyed_bytes),
        "elapsed_s": float(elapsed), "scenarios": doc, "failures": failures,
    }, open(out_json, "w"), indent=1)
    print(f"\n(JSON: {out_json}; bench took {float(elapsed):.0f} s)")


if __name__ == "__main__":
    main()
