"""The transparency report and the dashboard figures, counted from the audit log and feedback."""
