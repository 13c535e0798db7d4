from . import dispatcher, main, portal
