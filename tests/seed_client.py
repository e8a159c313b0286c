#!/usr/bin/env python3
"""A terminal client written only from seed 002, as an outside team would write it.

It knows nothing of thindesk beyond that document: `Authorization: username:password`
to get a token, then the bare token on every call, JSend replies, `{'resume': None}`
bodies, GET with a body for reset_password. Standard library only.

usage: seed_client.py BASE_URL USERNAME PASSWORD NEW_PASSWORD MAC
Prints one line per step; exits non-zero at the first surprise.
"""
import json
import sys
import urllib.error
import urllib.request

base, username, password, new_password, mac = sys.argv[1:6]


def call(method, path, authorization=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + "/api/v1.0" + path, data=data, method=method)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def expect(condition, what, reply):
    if not condition:
        print("UNEXPECTED", what, reply)
        sys.exit(1)
    print("ok", what)


# 1. Token with "username:password", then the bare token from then on.
reply = call("GET", "/token", username + ":" + password)
expect(reply["status"] == "success" and reply["data"]["token"]["id"], "token", reply)
token = reply["data"]["token"]["id"]
expect("issued_at" in reply["data"]["token"] and "expires" in reply["data"]["token"], "token times", reply)

# 2. Desktop list.
reply = call("GET", "/users/me/desktops", token)
expect(reply["status"] == "success" and "gateway_list" in reply["data"], "desktop list", reply)
desktops = reply["data"]["desktop_list"]
expect(len(desktops) == 1, "one desktop", reply)
desktop = desktops[0]
for key in ["id", "name", "status", "os_username", "os_password", "default_connection_type", "policy", "connection_info"]:
    expect(key in desktop, "desktop has " + key, desktop)

# 3. Resume, reboot, shut down.
for action in ["resume", "reboot", "shutdown"]:
    reply = call("POST", "/desktops/" + desktop["id"] + "/action", token, {action: None})
    expect(reply == {"status": "success", "data": None}, action, reply)

# 4. Places, no credentials.
reply = call("GET", "/places")
expect(reply["status"] == "success" and reply["data"]["place_list"], "places", reply)
place = reply["data"]["place_list"][0]["name"]

# 5. Administrator check.
reply = call("GET", "/users/me/is_administrator", token)
expect(reply == {"status": "success", "data": "false"}, "is_administrator", reply)

# 6. Terminal lookup before and after registration.
reply = call("GET", "/terminals/" + mac)
expect(reply == {"status": "fail", "data": "terminal not exist"}, "unknown terminal", reply)
reply = call("POST", "/terminals/registration", None, {"place": place, "seat_number": "01", "mac_address": mac})
expect(reply["status"] == "success" and reply["data"]["terminal_state"] in ("APPROVED", "WAITING", "REJECTED"),
       "registration", reply)
reply = call("POST", "/terminals/registration", None, {"place": place, "seat_number": "01", "mac_address": mac})
expect(reply == {"status": "fail", "data": "terminal existed"}, "second registration", reply)
reply = call("GET", "/terminals/" + mac)
expect(reply["status"] == "success" and reply["data"]["place"] == place and reply["data"]["seat_number"] == "01",
       "terminal lookup", reply)

# 7. Change the password with GET and a body, as the seed writes it.
reply = call("GET", "/users/me/reset_password", token, {"password": new_password})
expect(reply == {"status": "success", "data": None}, "reset_password", reply)
reply = call("GET", "/token", username + ":" + new_password)
expect(reply["status"] == "success", "token with the new password", reply)
print("done")
