"""Pure rules of the review service: protocol, priority, calendars, licences, audit, visibility."""
