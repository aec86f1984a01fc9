#!/usr/bin/python3
"""A real SMTP server for the tests (Debian's python3-aiosmtpd): every message it receives is
kept in DIR as NNN.json ({"to", "subject", "text", "html", "raw"}: the parts decoded, for tests to
read) and NNN.eml (as received). Prints the port it listens on, then serves until killed.

    /usr/bin/python3 scripts/smtp_sink.py DIR [PORT]

PORT 0 or absent: a free port. Run with Debian's python3 (where apt put aiosmtpd), not another
python3 on the PATH.
"""
import email
import email.policy
import json
import os
import signal
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = len([n for n in os.listdir(directory) if n.endswith(".json")])

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {"text/plain": "", "text/html": ""}
        for part in message.walk():
            kind = part.get_content_type()
            if kind in parts and not parts[kind]:
                parts[kind] = part.get_content()
        kept = {
            "to": envelope.rcpt_tos,
            "from": envelope.mail_from,
            "subject": str(message["subject"]),
            "text": parts["text/plain"],
            "html": parts["text/html"],
            "raw": raw.decode("utf-8", "replace"),
        }
        with self.lock:
            self.count += 1
            name = os.path.join(self.directory, "%06d" % self.count)
        with open(name + ".eml", "wb") as f:
            f.write(raw)
        # Written whole, then renamed: a reader never sees half a file.
        with open(name + ".tmp", "w") as f:
            json.dump(kept, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "0" else free_port()
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Keep(directory), hostname="127.0.0.1", port=port)
    for attempt in range(50):
        try:
            controller.start()
            break
        except Exception:  # the port still held by a sink that just stopped
            time.sleep(0.1)
    else:
        controller.start()
    print(port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), sys.exit(0)))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
