"""Host software for wrapped engines: one driver over the generated register map, with a
simulation backend (cocotb + cocotbext-axi) and a PYNQ backend for boards."""
