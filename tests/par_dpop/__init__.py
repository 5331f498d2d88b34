"""Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), client and resource-server
side."""
