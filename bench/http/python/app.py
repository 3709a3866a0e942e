"""The case studies' original services, as they describe them: Flask, run under gunicorn with
4 sync workers. GET / sleeps 3 s then writes a random log message to a file named after the
current timestamp; GET /api returns the query parameters and prints them. The baseline of
bench/http (only for comparison: this is not part of ferrostack)."""
import datetime
import json
import os
import random
import time

from flask import Flask, jsonify, request

app = Flask(__name__)
LOG_DIR = os.environ.get("LOG_DIR", "/tmp/bench-python-logs")
MESSAGES = ["User logged in", "Data processed successfully", "Cache refreshed", "Job crashed"]
LEVELS = ["info", "warning", "error", "debug"]


@app.route("/")
def generate():
    time.sleep(3)
    os.makedirs(LOG_DIR, exist_ok=True)
    name = datetime.datetime.now().strftime("%Y%m%d%H%M%S%f") + ".log"
    level, message = random.choice(LEVELS), random.choice(MESSAGES)
    with open(os.path.join(LOG_DIR, name), "w") as f:
        f.write(json.dumps({"level": level, "message": message}))
    return jsonify(file=name, level=level, message=message)


@app.route("/api")
def api():
    params = request.args.to_dict(flat=False)
    print(json.dumps(params), flush=True)
    return jsonify(params=params)


@app.route("/healthz")
def healthz():
    return jsonify(status="ok")
