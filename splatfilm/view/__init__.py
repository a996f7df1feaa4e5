"""Previs in the browser: `splatfilm view` shows the film's world on a local viser server, scrubs its time,
looks through its shots and writes new ones."""
