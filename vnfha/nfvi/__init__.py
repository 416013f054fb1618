"""The member's side of the NFVI bridge, and the message code both sides share.

A VNF's members call the bridge; the bridge itself is another program (:mod:`vnfha.bridge`).
This package holds what a member runs and what both programs need to talk
(docs/nfvi-bridge.md tells the whole story):

- ``client``: :class:`~vnfha.nfvi.client.BridgeClient` and the null
  :class:`~vnfha.nfvi.client.NoBridge`, behind :class:`~vnfha.nfvi.client.NfviPort`, the
  interface a member uses.
- ``agent``: :class:`~vnfha.nfvi.agent.NfviAgent`, a member's NFVI duties (watchdog, fence,
  placement, maintenance events).
- Shared by the member's side and the bridge: ``model``, the API's frozen values (the
  instance states and event kinds of the drivers included); ``wire``, messages <-> values,
  validation, the methods bound by hand, TLS credentials and the default message size;
  ``v1``, the generated messages (imported by ``wire`` only).

Import rule (``tests/unit/test_nfvi_layers.py`` checks it): nothing here imports
:mod:`vnfha.bridge` or any of its modules, so a member never loads the bridge's code, and
whatever both sides need lives here.
"""
