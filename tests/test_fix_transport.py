"""FIX transport (docs/fix.md "Transport"): 100+ concurrent sessions on one asyncio server,
TLS with a certificate generated here, plain TCP refused off loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fix_support import TICKER, logon, make_hub, report, run, serving, tag

from kalshi_platform.exchange import Exchange
from kalshi_platform.fix import FixServer
from kalshi_platform.fix import protocol as P
from kalshi_platform.fix.server import tls_context

N_SESSIONS = 120


def test_many_concurrent_sessions_trade_on_one_server():
    users = [f"user-{i:03d}" for i in range(N_SESSIONS)]

    async def body():
        hub = make_hub(users=users)
        async with serving(hub, users=users) as srv:
            clients = await asyncio.gather(*(logon(srv, u) for u in users))
            assert len(srv.connections) == N_SESSIONS
            assert all(s.conn is not None for s in srv.sessions.values())
            # five makers rest asks, five takers lift them; everyone else stays idle
            makers, takers = clients[:5], clients[5:10]
            for i, m in enumerate(makers):
                m.new_order(TICKER, "2", 1 + i, 50 + i)
            for m in makers:
                assert tag(await report(m), P.EXEC_TYPE) == "0"
            for i, t in enumerate(takers):
                t.new_order(TICKER, "1", 1 + i, 50 + i, tif="3")
            fills = {}
            for i, t in enumerate(takers):
                assert tag(await report(t), P.EXEC_TYPE) == "0"
                r = await report(t)
                fills[users[5 + i]] = (tag(r, P.EXEC_TYPE), tag(r, P.CUM_QTY))
            assert fills == {users[5 + i]: ("F", str(1 + i)) for i in range(5)}
            for m in makers:
                assert tag(await report(m), P.ORD_STATUS) == "2"
            for i in range(5):
                pos = {p.ticker: p.position for p in hub.exchange.positions(users[5 + i])}
                assert pos[TICKER] == (1 + i) * 100
            # the idle sessions are all still there and answer a TestRequest
            for c in clients[10:]:
                c.send(P.TEST_REQUEST, [(P.TEST_REQ_ID, c.key_id)])
            for c in clients[10:]:
                assert tag(await c.expect(("0",)), P.TEST_REQ_ID) == c.key_id
            await asyncio.gather(*(c.logout() for c in clients))
            assert not hub.exchange.check_invariants()
    run(body())


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_p, key_p = tmp_path / "fix.crt", tmp_path / "fix.key"
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return str(cert_p), str(key_p)


def test_tls_with_generated_certificate(tmp_path):
    cert, key = _self_signed(tmp_path)

    async def body():
        hub = make_hub()
        async with serving(hub, ssl_context=tls_context(cert, key)) as srv:
            trusting = ssl.create_default_context(cafile=cert)
            c = await logon(srv, "alice", ssl_context=trusting)
            c.new_order(TICKER, "1", 1, 30)
            r = await report(c)
            assert tag(r, P.EXEC_TYPE) == "0"
            assert hub.exchange.get_order(tag(r, P.ORDER_ID)).status == "resting"
            assert c.writer.get_extra_info("ssl_object") is not None
            await c.logout()
            with pytest.raises(ssl.SSLError):  # a client that does not trust the cert
                await logon(srv, "bob", ssl_context=ssl.create_default_context())
    run(body())


def test_plain_tcp_only_on_loopback():
    with pytest.raises(ValueError, match="loopback only"):
        FixServer(Exchange(), {}.get, host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback only"):
        FixServer(Exchange(), {}.get, host="192.168.1.10")
    FixServer(Exchange(), {}.get, host="::1")  # loopback: allowed (not started)
    FixServer(Exchange(), {}.get, host="localhost")
