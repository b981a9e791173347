"""The legal basis every search runs under, one module per concern (each exports only its own):

``values`` (states, kinds, drafts, views), ``rules`` (reach, four eyes, refusals), ``deadlines``
(expiry, lapse, the sweep), ``offences`` (the allowlist), ``services`` (record, read, use),
``decisions`` (approve, reject, revoke, ratify) and ``models`` (the table).
"""
