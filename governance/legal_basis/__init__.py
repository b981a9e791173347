"""The legal basis every search runs under: its values, the rules that admit it, its
deadlines, the offence catalogue and the services that record and decide it.
"""
