"""Steps the end-to-end tests share: accounts, a creator's upload through the presigned
form, and waiting for the event pump."""
from __future__ import annotations

import uuid

import requests

from tests.support import eventually

PASSWORD = "correct-horse-battery-9"


def token_for(api, email: str, password: str = PASSWORD) -> dict:
    reply = api.post("/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()


def new_creator(api) -> str:
    email = f"maker-{uuid.uuid4().hex[:10]}@paidres.example.com"
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD,
                                            "display_name": "小王"}).status_code == 201
    pair = token_for(api, email)
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api.post("/me/creator", headers=auth).status_code == 200
    pair = api.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    return pair["access_token"]


def send_file(api, token: str, resource_id: str, data: bytes, content_type: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    form = api.post(f"/creator/resources/{resource_id}/uploads", headers=auth,
                    json={"filename": "第一册.pdf", "content_type": content_type,
                          "size": len(data)}).json()
    posted = requests.post(form["url"], data=form["fields"],
                           files={"file": ("第一册.pdf", data)}, timeout=30)
    assert posted.status_code in (200, 201, 204), posted.text

    def checked():
        file = api.get(f"/creator/resources/{resource_id}", headers=auth).json()[
            "resource"]["file"]
        return file if file["status"] in ("verified", "rejected") else None

    file = eventually(checked)
    assert file, "the upload was not checked through the event pump"
    return file
