"""``user_profiles_relay``: generate fake user profiles, keep those in an age range, send them once each."""
