"""Zones: polygons drawn on a camera's picture, each armed on a schedule, watched for motion.

No video and no HTTP here.
"""
