"""Robots and the Genie-01 bridge: an openpi-compatible WebSocket policy server, the robot-side
runner, the ``Robot`` interface with a simulator robot and a thin Genie-01 adapter."""
import ipaddress


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (binding them needs no password or key)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
