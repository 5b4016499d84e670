"""Shared pytest fixtures: the sandbox of real servers and a way to run modules as Ansible does."""

from __future__ import annotations

import pytest

from sandbox.module_runner import execute_module


@pytest.fixture(scope="session")
def sandbox():
    from sandbox import Sandbox

    box = Sandbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def run_module():
    return execute_module


@pytest.fixture
def recording_proxy(sandbox):
    """A RecordingProxy in front of the sandbox's emulator, closed after the test."""
    from sandbox.proxy import RecordingProxy

    proxy = RecordingProxy(sandbox.aws.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def s3_client(sandbox):
    return sandbox.aws.client("s3")


@pytest.fixture(scope="session")
def cloudfront_client(sandbox):
    return sandbox.aws.client("cloudfront")
