"""A real application for the L4 tests on the official Nacos Python client (`nacos-sdk-python`
0.1.16 from PyPI, its `NacosClient`: HTTP long polling on `/v1/cs/configs/listener`, the 1.x
protocol that Nacos 2.0.4 still serves). Nothing here speaks to Nacos itself: the library does.

Environment (credentials never in argv): APP_SERVER (host:port), APP_NAMESPACE, APP_GROUP,
APP_DATA_IDS (comma-separated), NACOS_USERNAME, NACOS_PASSWORD.

Prints one JSON line per event: {"event":"config","dataId":..,"md5":..} each time the library
hands it a config (the md5 of the content it holds and polls with), {"event":"ready"} once every
dataId was read. Runs until its stdin closes.
"""
import hashlib
import json
import logging
import os
import sys

import nacos

logging.disable(logging.CRITICAL)


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def md5(content):
    return hashlib.md5((content or "").encode("utf-8")).hexdigest()


def main():
    group = os.environ.get("APP_GROUP", "DEFAULT_GROUP")
    data_ids = [d for d in os.environ.get("APP_DATA_IDS", "").split(",") if d]
    client = nacos.NacosClient(
        os.environ["APP_SERVER"],
        namespace=os.environ.get("APP_NAMESPACE", ""),
        username=os.environ.get("NACOS_USERNAME") or None,
        password=os.environ.get("NACOS_PASSWORD") or None,
    )
    # No local snapshot: what it holds is what the server handed it.
    client.set_options(no_snapshot=True)

    def changed(params):
        say({"event": "config", "dataId": params["data_id"], "md5": md5(params["content"])})

    for data_id in data_ids:
        content = client.get_config(data_id, group, no_snapshot=True)
        say({"event": "config", "dataId": data_id, "md5": md5(content)})
        client.add_config_watcher(data_id, group, changed, content=content)
    say({"event": "ready"})
    sys.stdin.read()
    client.stop_subscribe()
    for data_id in data_ids:
        client.remove_config_watcher(data_id, group, changed, remove_all=True)
    os._exit(0)


if __name__ == "__main__":
    main()
