"""A read-only TAXII 2.1 server over Beacon's signals (``/taxii2/``).

Collections are per-member views: one for everything the caller may see and one per sharing
group it belongs to. Every read starts from ``Signal.objects.visible_to(member, "detection")``
and is audited as ``taxii.read``. docs/integrations/taxii.md describes it for consumers.
"""
