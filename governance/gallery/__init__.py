"""The gallery of faces: enrolment with provenance, photo blobs, sites and their opt-outs,
and erasure.
"""
