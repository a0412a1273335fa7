"""The domain: values passed between layers, the vote rules, and every exception. No I/O,
no wire types.
"""
