<?xml version="1.0" encoding="UTF-8"?>
<eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="S2A_OPER_MSK_DEFECT_SGS__20190212T223712_A019029_T07HFE_B01_MSIL1C">
  <gml:name>MSK_DEFECT pixels mask from data-strip S2A_OPER_MSK_DEFECT_SGS__20190212T223712_A019029_T07HFE_B01_MSIL1C</gml:name>
  <eop:maskMembers/>
</eop:Mask>
