"""LTI 1.3 tool side: Moodle (and any LTI Advantage platform) launches and deep linking."""
