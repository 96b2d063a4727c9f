"""Loaded after llmitm (`-s`): any server connection to a non-loopback address means a flow left llmitm
unrouted (llmitm's own upstream calls never pass through mitmproxy's server connections to other hosts
in these runs). Record it in $LLMITM_SENTINEL_FILE and kill it before a packet leaves the machine."""

import ipaddress
import os


class Sentinel:
    def server_connect(self, data):
        host = str(data.server.address[0]) if data.server.address else ""
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        if not local:
            with open(os.environ["LLMITM_SENTINEL_FILE"], "a") as f:
                f.write(f"{host}:{data.server.address[1]}\n")
            data.server.error = "sentinel: this run never connects beyond loopback"


addons = [Sentinel()]
