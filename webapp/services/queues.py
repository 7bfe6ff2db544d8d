"""The RQ queues: names, and enqueueing work by dotted path (webapp never imports jobs)."""

from __future__ import annotations

from rq import Queue
from rq.serializers import JSONSerializer

from webapp.services.redisconn import get_redis

FETCH = "fetch"
SEND = "send"
DEFAULT = "default"
ALL = (FETCH, SEND, DEFAULT)


def queue(name: str) -> Queue:
    return Queue(name, connection=get_redis(), serializer=JSONSerializer)
