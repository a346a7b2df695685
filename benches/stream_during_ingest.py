# Stream commit latency while a batch ingest runs on the same lake (docs/benchmarks.md):
#   python3 benches/stream_during_ingest.py BINARY DATA_DIR LAKE_DIR
# starts `BINARY stream` on a fresh LAKE_DIR, then `BINARY ingest` of DATA_DIR's tickets,
# interactions and ratings (from `deskpulse generate`), and while the ingest runs posts one rating
# every 100 ms and times how long until /healthz counts it in the lake. Prints one JSON line.
import json, subprocess, sys, time, urllib.request, shutil, os, statistics
binary, data, lake = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(lake, ignore_errors=True)
s = subprocess.Popen([binary, "stream", "--lake", lake, "--listen", "127.0.0.1:0", "--flush-interval", "200ms"],
                     stdout=subprocess.PIPE, text=True)
url = s.stdout.readline().strip().removeprefix("listening on ")
time.sleep(1)
def health():
    return json.load(urllib.request.urlopen(url + "/healthz"))
ing = subprocess.Popen([binary, "--lake", lake, "ingest"] + [f"{data}/{t}.csv" for t in ["tickets", "interactions", "ratings"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
lat = []
n = 0
t0 = time.time()
while ing.poll() is None:
    n += 1
    ev = {"type": "rating", "event_id": f"e-{n}", "rating_id": f"L{n}", "ticket_id": "T1",
          "rated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "channel": "chat", "score_raw": "4"}
    start = time.time()
    req = urllib.request.Request(url + "/v1/events", data=(json.dumps(ev) + "\n").encode(), method="POST",
                                 headers={"content-type": "application/x-ndjson"})
    urllib.request.urlopen(req).read()
    while health()["in_lake"] < n:
        time.sleep(0.01)
    lat.append(time.time() - start)
    time.sleep(0.1)
ingest_s = time.time() - t0
s.terminate(); s.wait()
lat.sort()
print(json.dumps({"binary": binary, "ingest_s": round(ingest_s, 1), "events": len(lat),
                  "p50_s": round(statistics.median(lat), 3), "p90_s": round(lat[int(len(lat)*0.9)], 3),
                  "max_s": round(max(lat), 3)}))
