"""Robots and the Genie-01 bridge: an openpi-compatible WebSocket policy server, the robot-side
runner, the ``Robot`` interface with a simulator robot and a thin Genie-01 adapter."""
