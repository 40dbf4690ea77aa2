"""SIP messages over one TLS connection: many, large, fragmented."""


def test_pipelined_requests_answered_in_order(t):
    count = 200
    server = t.kamailio()
    with t.connect(server) as conn:
        conn.send(b"".join(conn.build("OPTIONS", cseq=n)
                           for n in range(1, count + 1)))
        replies = [conn.read_message() for _ in range(count)]
    assert all(r.status == 200 for r in replies), \
        [r for r in replies if r.status != 200][:3]
    cseqs = [int(r.header("CSeq").split()[0]) for r in replies]
    assert cseqs == list(range(1, count + 1)), "replies out of order"


def test_60kb_message_arrives_whole(t):
    # kamailio.cfg.in raises the core's per-connection read buffer
    # (tcp_rd_buf_size, 16 KB by default) to 64 KB: stay below it.
    body = b"".join(b"%05d|" % n for n in range(10000))    # 60,000 bytes
    server = t.kamailio()
    with t.connect(server) as conn:
        request = conn.build("MESSAGE", body=body)
        reply = conn.request(request)
    assert reply.status == 200, reply
    assert reply.header("X-Len") == str(len(request)), \
        "server saw %s of %d bytes" % (reply.header("X-Len"), len(request))


def test_request_in_one_byte_records(t):
    server = t.kamailio()
    with t.connect(server) as conn:
        request = conn.build("OPTIONS")
        reply = conn.request(request, record_size=1)
    assert reply.status == 200, reply
    assert reply.header("X-Len") == str(len(request)), reply.header("X-Len")
