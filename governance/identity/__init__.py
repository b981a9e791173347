"""Who may act: agencies, accounts, their applications and claims, credentials, tokens,
permissions, principals, persons and the two-administrator proposals.
"""
