"""The sliding-window hunt."""
