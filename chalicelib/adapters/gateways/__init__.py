"""Payment gateways behind one interface (:mod:`.base`); chosen per stage by ``GATEWAY``."""
