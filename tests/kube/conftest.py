"""Fixtures for jkctl.kube: a fake API server per test, and a client logged in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jkctl.kube.client import KubeClient, KubeSettings

from .fakeapi import CountingLogin, FakeApi


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as server:
        yield server


@pytest.fixture
async def kube(api: FakeApi) -> AsyncIterator[KubeClient]:
    login = CountingLogin(lambda _: api.credentials())
    async with KubeClient(login, settings=KubeSettings(request_timeout=5.0)) as client:
        yield client
