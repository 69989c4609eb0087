"""Mainframe data set emulator: Hercules DASD images, VTOCs, PDS, records."""
